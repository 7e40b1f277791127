"""The catalog web page, served by `python -m catalog serve` and driven in headless Chromium."""

from __future__ import annotations

import http.client
import os

import pytest
from selenium.webdriver.common.by import By
from support.catalog_server import raw_get, serve

from catalog.synthetic import make_version

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
SCRIPT_CAPTION = "<script>window.__pwned = 1</script> a dog & <b>bold</b> cat"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webroot"))
    v1 = make_version(root, "demo", 30, seed=1, captions=[SCRIPT_CAPTION])
    make_version(
        root, "demo", 4, seed=2, parents=["demo@1"], carry_shards=[s["path"] for s in v1["shards"]], url_offset=100
    )
    proc, port = serve(root)
    yield root, port, v1
    proc.terminate()
    proc.wait(timeout=30)


def test_dataset_and_version_pages_show_funnel(site, browser):
    root, port, v1 = site
    browser.get(f"http://127.0.0.1:{port}/")
    assert "demo@1" in browser.page_source and "demo@2" in browser.page_source
    browser.find_element(By.LINK_TEXT, "demo@2").click()
    assert browser.find_element(By.ID, "funnel-in").text == "46"
    assert browser.find_element(By.ID, "funnel-kept").text == "34"
    counts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "svg.funnel text.funnel-count")]
    assert counts == ["46 in → 41 kept", "41 in → 37 kept", "37 in → 36 kept", "36 in → 34 kept", "34 in → 34 kept"]
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table td")]
    assert "download_failed" in cells and "duplicate_image" in cells
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.hist")) == 4
    lineage = browser.find_element(By.CSS_SELECTOR, "svg.lineage")
    assert [t.text for t in lineage.find_elements(By.TAG_NAME, "text")] == ["demo@1", "demo@2"]
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "catalog_version.png"))


def test_gallery_shows_images_views_and_escaped_captions(site, browser):
    root, port, v1 = site
    browser.get(f"http://127.0.0.1:{port}/d/demo/1/samples?page=0&per_page=12")
    cards = browser.find_elements(By.CSS_SELECTOR, ".sample")
    assert len(cards) == 12
    widths = browser.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1)")
    assert len(widths) == 12 * 5 and all(w > 0 for w in widths), widths
    assert len(cards[0].find_elements(By.CSS_SELECTOR, "img.view")) == 4
    assert [e.text.split(" ")[0] for e in cards[0].find_elements(By.CSS_SELECTOR, ".tv")] == [
        "eda0.txt",
        "eda1.txt",
        "bt.spa.txt",
    ]
    assert cards[0].find_element(By.CSS_SELECTOR, ".caption").text == SCRIPT_CAPTION
    assert browser.execute_script("return window.__pwned === undefined")
    assert "&lt;script&gt;" in browser.page_source
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "catalog_gallery.png"))
    browser.get(f"http://127.0.0.1:{port}/d/demo/1/samples?page=2&per_page=12")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".sample")) == 6
    assert "page 3 of 3 (30 samples)" in browser.page_source


def test_sample_page_shows_json(site, browser):
    root, port, v1 = site
    browser.get(f"http://127.0.0.1:{port}/d/demo/2/sample/31")
    text = browser.find_element(By.TAG_NAME, "pre").text
    assert '"url": "http://127.0.0.1/img/101.jpg"' in text
    assert all(w > 0 for w in browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)"))


@pytest.mark.parametrize(
    "path",
    [
        "/files/..%2f..%2f..%2fetc%2fpasswd",
        "/files/demo/..%2f..%2fetc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/demo/../../../etc/passwd",
        "/d/demo/1/sample/0/..%2f..%2fmanifest.json",
        "/files/.catalog/index.sqlite",
    ],
)
def test_traversal_paths_are_refused(site, path):
    root, port, v1 = site
    status, _, body = raw_get(port, path)
    assert status == 400 and b"path refused" in body


def test_traversal_refused_in_browser_and_files_inside_served(site, browser):
    root, port, v1 = site
    browser.get(f"http://127.0.0.1:{port}/files/..%2f..%2fetc%2fpasswd")
    assert "path refused" in browser.page_source and "root:" not in browser.page_source
    status, _, body = raw_get(port, "/files/demo/v1/manifest.json")
    assert status == 200 and b'"lipforge.manifest/1"' in body


def test_read_only_and_token(site, tmp_path):
    root, port, v1 = site
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/", body=b"x")
    assert conn.getresponse().status == 405
    proc, tport = serve(root, "--token", "s3cret")
    try:
        assert raw_get(tport, "/")[0] == 401
        assert raw_get(tport, "/", {"Authorization": "Bearer wrong"})[0] == 401
        status, _, body = raw_get(tport, "/", {"Authorization": "Bearer s3cret"})
        assert status == 200 and b"demo@2" in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
