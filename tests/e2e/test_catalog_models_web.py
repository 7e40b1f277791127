"""Model runs on the catalog web page (catalog.models, catalog.web.model_pages), in headless Chromium:
the runs table, a run's page (metrics chart, evaluation PNGs, config) and the links between a run
and the dataset versions it trained and was evaluated on."""

from __future__ import annotations

import io
import os
import re

import pytest
from PIL import Image, ImageDraw
from selenium.webdriver.common.by import By
from support.catalog_server import raw_get, serve
from support.versions import jpeg, sample_members, write_version

from catalog.models import record_eval, record_run

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
RUN = "clip-web-1"
EVIL = "evil-run"
SCRIPT = "<script>window.__pwned = 1</script> & <b>bold</b>"
PNG_SIZE = (48, 24)


def word_patch_png() -> bytes:
    """A small real PNG, drawn like a word-patch similarity figure."""
    image = Image.new("RGB", PNG_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        draw.rectangle((i * 8, 0, i * 8 + 7, 23), fill=(40 * i, 90, 255 - 40 * i))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def publish(root: str, dataset: str, n: int, seed: int) -> dict:
    samples = []
    for i in range(n):
        image = Image.new("RGB", (64, 48), ((seed * 70 + i * 30) % 256, 120, 200))
        url = f"http://127.0.0.1/{dataset}/{i}.jpg"
        samples.append((url, sample_members(url, jpeg(image), f"a shape number {i}")))
    return write_version(root, dataset, samples)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("modelsroot"))
    publish(root, "shapes", 6, seed=1)
    publish(root, "shapes-eval", 4, seed=2)
    record_run(
        root,
        RUN,
        status="finished",
        steps=20,
        step=20,
        code_version="0.1.0+test",
        objectives={"clip": 1.0},
        datasets={"shapes@1": {"role": "train", "weight": 1.0, "samples_seen": 120}},
        checkpoints=[{"step": 10, "path": "ck/10"}, {"step": 20, "path": "ck/20"}],
        config={"train": {"lr": 0.001}},
    )
    chance = {"zeroshot/shape/top1": 0.25}
    for step, top1, r1 in ((10, 0.4, 0.3), (20, 0.7, 0.55)):
        record_eval(
            root,
            RUN,
            step,
            "shapes-eval@1",
            {"zeroshot/shape/top1": top1, "retrieval/i2t_r1": r1},
            chance,
            files={"word-patch.png": word_patch_png()},
            checkpoint=f"ck/{step}",
        )
    record_run(root, EVIL, status="running", config={"note": SCRIPT}, datasets={"shapes@1": {"role": "train"}})
    record_eval(root, EVIL, 1, "shapes-eval@1", {"<b>metric</b>": 0.5})
    proc, port = serve(root)
    yield root, port
    proc.terminate()
    proc.wait(timeout=30)


def test_models_list_run_page_and_links_both_ways(site, browser):
    root, port = site
    browser.get(f"http://127.0.0.1:{port}/")
    browser.find_element(By.LINK_TEXT, "Models").click()
    assert browser.current_url.endswith("/models")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == [RUN, EVIL]
    browser.find_element(By.LINK_TEXT, RUN).click()
    assert browser.current_url.endswith(f"/models/{RUN}")
    assert browser.find_element(By.ID, "run-status").text == "finished"
    assert browser.find_element(By.ID, "run-step").text == "20/20"

    (chart,) = browser.find_elements(By.CSS_SELECTOR, "section.eval-set svg.metrics")
    lines = chart.find_elements(By.CSS_SELECTOR, "polyline.series")
    assert sorted(p.get_attribute("data-metric") for p in lines) == ["retrieval/i2t_r1", "zeroshot/shape/top1"]
    assert all(len(p.get_attribute("points").split()) == 2 for p in lines), "one point per eval step"
    (chance,) = chart.find_elements(By.CSS_SELECTOR, "line.chance")
    assert chance.get_attribute("data-metric") == "zeroshot/shape/top1" and chance.get_attribute("stroke-dasharray")
    assert [t.text for t in chart.find_elements(By.CSS_SELECTOR, "text.x-tick")] == ["10", "20"]
    assert "chance 0.25" in [t.text for t in chart.find_elements(By.CSS_SELECTOR, "g.legend text")]

    (img,) = browser.find_elements(By.CSS_SELECTOR, "img.eval-file")
    assert img.get_attribute("src").endswith(f"/models/{RUN}/files/evals/step-00000020/shapes-eval-v1/word-patch.png")
    size = browser.execute_script("const i = arguments[0]; return [i.complete, i.naturalWidth, i.naturalHeight]", img)
    assert size == [True, *PNG_SIZE]
    config = browser.find_element(By.ID, "run-config")
    assert '"lr": 0.001' in config.get_attribute("textContent")
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "catalog_models_run.png"))

    browser.find_element(By.LINK_TEXT, "shapes@1").click()
    assert browser.current_url.endswith("/d/shapes/1") and browser.find_element(By.TAG_NAME, "h1").text == "shapes@1"
    trained = browser.find_element(By.ID, "runs-trained")
    assert [a.text for a in trained.find_elements(By.TAG_NAME, "a")] == [RUN, EVIL]
    assert browser.find_element(By.ID, "runs-evaluated").text.endswith("none")
    trained.find_element(By.LINK_TEXT, RUN).click()
    assert browser.current_url.endswith(f"/models/{RUN}")

    browser.find_element(By.CSS_SELECTOR, "section.eval-set h3 a").click()
    assert browser.current_url.endswith("/d/shapes-eval/1")
    evaluated = browser.find_element(By.ID, "runs-evaluated")
    assert [a.text for a in evaluated.find_elements(By.TAG_NAME, "a")] == [RUN, EVIL]


def test_script_in_a_run_is_shown_as_text(site, browser):
    root, port = site
    browser.get(f"http://127.0.0.1:{port}/models/{EVIL}")
    assert SCRIPT in browser.find_element(By.ID, "run-config").get_attribute("textContent")
    assert "<b>metric</b>" in [th.text for th in browser.find_elements(By.CSS_SELECTOR, "section.eval-set th")]
    assert browser.execute_script("return window.__pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "main b b, main pre b")
    assert "&lt;script&gt;" in browser.page_source


def test_eval_files_route_serves_only_recorded_files(site):
    root, port = site
    good = f"/models/{RUN}/files/evals/step-00000010/shapes-eval-v1/word-patch.png"
    status, media, body = raw_get(port, good)
    assert status == 200 and media == "image/png" and body == word_patch_png()
    for path in (
        f"/models/{RUN}/files/evals/../run.json",
        f"/models/{RUN}/files/..%2frun.json",
        f"/models/{RUN}/files/%2e%2e/%2e%2e/shapes/v1/manifest.json",
        "/models/..%2f..%2fetc/files/evals/x.png",
        f"/models/{RUN}/files/run.json",
        "/files/.runs/clip-web-1/run.json",
    ):
        status, _, body = raw_get(port, path)
        assert status == 400 and b"path refused" in body, path
    status, _, body = raw_get(port, f"/models/{RUN}/files/evals/step-00000010/shapes-eval-v1/other.png")
    assert status == 404 and b"recorded no evaluation file" in body
    status, _, body = raw_get(port, "/models/ghost")
    assert status == 404 and re.search(rb"no run &#x27;ghost&#x27; under .* \(known runs: clip-web-1, evil-run\)", body)
