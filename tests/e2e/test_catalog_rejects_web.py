"""Rejects you can browse: the version page's funnel and reasons link to a gallery of each
reason's sampled rejected rows (catalog.web.reject_pages), served by `python -m catalog serve`
and driven in headless Chromium; and `python -m catalog rejects` on an s3:// root (moto)."""

from __future__ import annotations

import io
import json
import os

import pyarrow.parquet as pq
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support.catalog_server import raw_get, serve
from support.moto import moto_s3

from catalog.__main__ import run
from catalog.reasons import REASONS
from catalog.store import Catalog
from catalog.synthetic import make_version

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
NAME = "Wilhelmina Achterberg-Nakamura"  # planted in the raw source captions only
CAP = 2
REJECTED = {
    "empty_caption": 2,
    "not_english": 4,
    "download_failed": 3,
    "not_an_image": 1,
    "image_too_small": 1,
    "aspect_ratio": 1,
    "duplicate_image": 3,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """demo@1 with a rejects sample (CAP rows per reason), demo@2 built before reject samples."""
    root = str(tmp_path_factory.mktemp("rejectsroot"))
    make_version(
        root, "demo", 12, seed=7, rejected=REJECTED, rejects_sample=True, sample_per_reason=CAP, person_name=NAME
    )
    make_version(root, "demo", 4, seed=8)
    proc, port = serve(root)
    yield root, port
    proc.terminate()
    proc.wait(timeout=30)


def images_loaded(browser) -> list[int]:
    """naturalWidth of every image once all have finished loading (0: broken)."""
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return Array.from(document.images).every(i => i.complete)")
    )
    return browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")


def test_funnel_links_to_the_duplicates_gallery(site, browser):
    root, port = site
    browser.get(f"http://127.0.0.1:{port}/d/demo/1")
    links = browser.find_elements(By.CSS_SELECTOR, "svg.funnel a.funnel-reason")
    assert [a.get_attribute("data-reason") for a in links] == [r for r in REASONS if r in REJECTED]
    labels = browser.find_elements(By.CSS_SELECTOR, "svg.funnel a.funnel-reason-label")
    assert [a.text for a in labels] == [f"{r} {REJECTED[r]}" for r in REASONS if r in REJECTED]
    assert labels[1].get_dom_attribute("href").endswith("/d/demo/1/rejects/not_english")
    bar = browser.find_element(By.CSS_SELECTOR, 'svg.funnel a[data-reason="duplicate_image"] rect')
    bar.click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/d/demo/1/rejects/duplicate_image"))
    assert browser.find_element(By.ID, "rejected").text == "3" and browser.find_element(By.ID, "sampled").text == "2"
    cards = browser.find_elements(By.CSS_SELECTOR, ".card.reject")
    assert len(cards) == CAP
    widths = images_loaded(browser)
    assert len(widths) == 2 * CAP and all(w > 0 for w in widths), widths
    kept = set(Catalog(root).keys("demo", 1))
    for card in cards:
        own, rep = card.find_elements(By.CSS_SELECTOR, ".pair figure")
        key = card.get_attribute("data-key")
        assert own.find_element(By.TAG_NAME, "figcaption").text == f"rejected {key}"
        rep_caption = rep.find_element(By.TAG_NAME, "figcaption").text
        assert rep_caption.startswith("kept representative ") and rep_caption.split()[-1] in kept
        assert own.rect["x"] + own.rect["width"] <= rep.rect["x"] and abs(own.rect["y"] - rep.rect["y"]) < 2
        scores = {
            tr.find_element(By.TAG_NAME, "th").text: tr.find_element(By.TAG_NAME, "td").text
            for tr in card.find_elements(By.CSS_SELECTOR, "table.scores tr")
        }
        assert list(scores) == ["duplicate_of", "phash", "sha256"] and scores["duplicate_of"] == rep_caption.split()[-1]
        assert len(scores["phash"]) == 16 and len(scores["sha256"]) == 64
        assert "orig_width 512" in card.find_element(By.CSS_SELECTOR, ".other-scores").text
    assert NAME not in browser.page_source
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "catalog_rejects_duplicates.png"))


def test_reasons_table_links_to_text_rejects_with_scrubbed_captions(site, browser):
    root, port = site
    source = pq.read_table(Catalog(root).manifest("demo@1")["sources"][0]["uri"]).column("caption").to_pylist()
    assert any(NAME in (c or "") for c in source), "the name is planted on the source side"
    browser.get(f"http://127.0.0.1:{port}/d/demo/1")
    browser.find_element(By.CSS_SELECTOR, "#reasons").find_element(By.LINK_TEXT, "not_english").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/d/demo/1/rejects/not_english"))
    cards = browser.find_elements(By.CSS_SELECTOR, ".card.reject")
    assert len(cards) == CAP and browser.execute_script("return document.images.length") == 0
    for card in cards:
        assert card.find_element(By.CSS_SELECTOR, ".no-thumb").text == "not downloaded: rejected at the text stage"
        assert card.find_element(By.CSS_SELECTOR, ".caption").text == "<person> mit einem Hund im Park"
        scores = [td.text for td in card.find_elements(By.CSS_SELECTOR, "table.scores td")]
        assert scores[:2] == ["de", "0.912"]
    assert "&lt;person&gt;" in browser.page_source and NAME not in browser.page_source
    browser.get(f"http://127.0.0.1:{port}/d/demo/1/rejects/download_failed")
    why = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".no-thumb")}
    assert why == {"not downloaded: failed_to_download (HTTP Error 404: Not Found)"}
    browser.get(f"http://127.0.0.1:{port}/d/demo/1/rejects/aspect_ratio")
    assert all(w > 0 for w in images_loaded(browser)) and len(browser.find_elements(By.CSS_SELECTOR, "img.thumb")) == 1


def test_reasons_page_and_a_version_without_a_sample(site, browser):
    root, port = site
    browser.get(f"http://127.0.0.1:{port}/d/demo/1/rejects")
    rows = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert [r[0] for r in rows] == [r for r in REASONS if r in REJECTED]
    assert rows[1] == ["not_english", "text", "4", "14.8%", "2"]
    browser.get(f"http://127.0.0.1:{port}/d/demo/2")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.funnel a") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#reasons a") == []
    assert browser.find_element(By.ID, "no-rejects-sample").text.startswith("no rejects sample")
    for path in ("/d/demo/2/rejects", "/d/demo/2/rejects/not_english"):
        browser.get(f"http://127.0.0.1:{port}{path}")
        assert "demo@2 predates reject samples" in browser.find_element(By.ID, "no-sample").text
        assert raw_get(port, path)[0] == 404


def test_thumbnails_are_jpeg_and_unknown_ones_404(site):
    root, port = site
    key = next(
        r["key"]
        for r in pq.read_table(os.path.join(root, "demo", "v1", "rejects_sample.parquet")).to_pylist()
        if r["reason"] == "image_too_small"
    )
    status, media, body = raw_get(port, f"/d/demo/1/rejects/image_too_small/{key}.jpg")
    assert status == 200 and media == "image/jpeg"
    with Image.open(io.BytesIO(body)) as im:
        assert im.size == (150, 120)
    assert raw_get(port, f"/d/demo/1/rejects/aspect_ratio/{key}.jpg")[0] == 404  # the key under another reason
    assert raw_get(port, f"/d/demo/1/rejects/image_too_small/{key}/duplicate.jpg")[0] == 404
    assert raw_get(port, "/d/demo/1/rejects/image_too_small/0000000000000000.jpg")[0] == 404
    assert raw_get(port, "/d/demo/9/rejects/image_too_small/x.jpg")[0] == 404
    status, _, body = raw_get(port, "/d/demo/1/rejects/blurry")
    assert status == 404 and b"unknown reason &#x27;blurry&#x27;" in body


def test_cli_reads_the_sample_from_an_s3_root(tmp_path, capsys):
    with moto_s3("lipforge-rejects-test", {"LIPFORGE_CACHE": str(tmp_path / "cache")}) as bucket:
        root = f"{bucket}/catalog"
        make_version(root, "web", 5, seed=3, shard_size=4, rejects_sample=True, sample_per_reason=CAP, person_name=NAME)
        assert run(["--root", root, "rejects", "web@1", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["file"] == f"{root}/web/v1/rejects_sample.parquet"
        assert [(e["reason"], e["sampled"]) for e in doc["reasons"]] == [
            ("empty_caption", 2),
            ("not_english", 2),
            ("download_failed", 2),
            ("image_too_small", 1),
            ("duplicate_image", 2),
        ]
        assert run(["--root", root, "rejects", "web@1", "--reason", "duplicate_image"]) == 0
        out = capsys.readouterr().out
        assert out.count("(kept representative)") == 2 and NAME not in out
