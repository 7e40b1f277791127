"""The sample web corpus's scene records and its held-out eval list: the `scene` column agrees
with the pixels of the served images (boxes drawn back onto the decoded pictures), the eval
list is clean, distinct and served, and neither changes any other output of the generator."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageOps

from catalog.reasons import KEEP
from pipelines.phash import hamming
from pipelines.sampleweb import captions as cap
from pipelines.sampleweb import cli, generate
from pipelines.sampleweb.corpus import DISTINCT_BITS, image_phash
from pipelines.sampleweb.shapes import BACKGROUNDS, COLOURS, REGIONS, RELATIONS, SHAPES, Scene, Shape, scene_json

BASE = "http://127.0.0.1:8765"
N, N_IMAGES, N_TEXTS, N_EVAL = 240, 60, 40, 30
# Categories whose URL serves no decodable drawn picture: their scene is null.
NO_PICTURE = {"status_404", "status_500", "huge_image", "html_as_image", "corrupt_jpeg"}
# A shape's colour in the decoded image, at the centre of its box (3x3 median), within this per channel
# (JPEG at quality >= 82, GIF palettes, CMYK round trips and the pipeline's resize all stay well inside).
COLOUR_TOLERANCE = 40

# Recorded with the generator before scenes and the eval list existed (same arguments as
# `_plain`): the served files and every parquet row, ignoring the new `scene` column.
BEFORE = {
    "images": (155, "cafe075ea0a423ce8136a428ce4cacf5b295c32e81272aef4c9f60ec19e9af45"),
    "urls": "f6a1db8df112a3317f5314858bcc28e4d3ae31bddad70a41bafcb211f215cf97",
    "truth": "ebaa983a8c419ad5d63f3f9e7cdc2e608c00edd852f4e8a612ece799b585dae9",
    "images_list": "9d7e06bc681b19503b00cbf86031df7310380565e9eaec18a7cc2dfcdad4e4dc",
    "images_truth": "9ab7d753291972b640fdd66ea716b74cdd6f7469b661ee019f8a0532ca43f1dc",
    "texts": "1df373212d0daa6c70e4a2056f8e93bd20fd6f24bb107554df35020720735106",
    "texts_truth": "b6ac8a7e851ccea4492edb16fcdd0f8634c0f93f40df7b9564e846ee43d1f4b8",
    "texts.parquet bytes": "8cb32f3c47239e95fed986e1354f7a5065a0d6bab00ec975269735093d5ff567",
    "texts_truth.parquet bytes": "6ca8c377673fb1eae4cf6c303f1ea399a8c337d87574d228549932a4bed7927c",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes")
    generate(out, N, seed=3, base_url=BASE, n_images=N_IMAGES, n_texts=N_TEXTS, n_eval=N_EVAL)
    return out


def _rows(out: Path) -> list[dict]:
    """Every row that serves a file, from the three lists with URLs: truth + list name + served path."""
    rows = []
    for listed, truth, folder in (
        ("urls", "truth", "images"),
        ("images", "images_truth", "images"),
        ("eval", "eval_truth", "eval"),
    ):
        published = pq.read_table(out / f"{listed}.parquet").to_pylist()
        for p, t in zip(published, pq.read_table(out / f"{truth}.parquet").to_pylist()):
            assert p["url"] == t["url"] and p["scene"] == t["scene"]
            path = None if "/status/" in t["url"] else out / folder / t["url"].rsplit("/", 1)[1]
            rows.append({**t, "list": listed, "path": path})
    return rows


def _upright(path: Path) -> np.ndarray:
    """The served image as the pipeline decodes it: EXIF orientation applied, RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)


def _probe(shape: dict, width: int, height: int) -> tuple[int, int]:
    """A pixel inside the drawn shape: its box's centre (a ring is hollow: the middle of its band,
    which `shapes.draw_shape` draws max(2, 0.35 r) px wide inside the box's edge)."""
    x0, y0, x1, y1 = shape["box"]
    cx, cy = (x0 + x1) / 2 * width, (y0 + y1) / 2 * height
    if shape["kind"] == "ring":
        r = (x1 - x0) / 2 * width
        cx += r - max(2, int(0.35 * r)) / 2
    return int(cx), int(cy)


def _colour_error(pixels: np.ndarray, shape: dict) -> float:
    """How far the pixels at the probe are from the shape's colour (max over channels): the median
    of the 3x3 patch, or for a ring's band (2 px wide on a small picture) its closest pixel."""
    h, w = pixels.shape[:2]
    x, y = _probe(shape, w, h)
    patch = pixels[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3)
    errors = np.abs(patch - np.array(COLOURS[shape["colour"]])).max(axis=1)
    if shape["kind"] == "ring":
        return float(errors.min())
    return float(np.abs(np.median(patch, axis=0) - np.array(COLOURS[shape["colour"]])).max())


# ------------------------------------------------------------------ the scene column


def test_scene_record_schema() -> None:
    scene = Scene(
        400,
        200,
        "stripes",
        (Shape("circle", "red", "large", 100.0, 100.0, 40.0), Shape("star", "blue", "small", 300.0, 90.0, 12.5)),
        relation="left of",
    )
    text = scene_json(scene)
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))  # compact, sorted
    assert json.loads(text) == {
        "background": "stripes",
        "left_to_right": False,
        "region": None,
        "relation": "left of",
        "shapes": [
            {"box": [0.15, 0.3, 0.35, 0.7], "colour": "red", "kind": "circle", "size": "large"},
            {"box": [0.7188, 0.3875, 0.7812, 0.5125], "colour": "blue", "kind": "star", "size": "small"},
        ],
    }


def test_every_drawn_picture_records_its_scene(corpus: Path) -> None:
    rows = _rows(corpus)
    texts = pq.read_table(corpus / "texts.parquet")
    assert texts.column_names == ["caption"]  # captions of scenes never drawn: no scene column
    seen = set()
    for r in rows:
        parts = set(r["category"].split("+"))
        if parts & NO_PICTURE:
            assert r["scene"] is None, r
            continue
        assert r["scene"] is not None, r
        scene = json.loads(r["scene"])
        assert r["scene"] == json.dumps(scene, sort_keys=True, separators=(",", ":"))
        assert set(scene) == {"background", "relation", "region", "left_to_right", "shapes"}
        assert scene["background"] in BACKGROUNDS
        assert scene["relation"] in (None, *RELATIONS) and scene["region"] in (None, *REGIONS)
        assert 1 <= len(scene["shapes"]) <= 3 and isinstance(scene["left_to_right"], bool)
        assert (scene["relation"] is not None) == (len(scene["shapes"]) == 2)
        for s in scene["shapes"]:
            assert set(s) == {"kind", "colour", "size", "box"}
            assert s["kind"] in SHAPES and s["colour"] in COLOURS and s["size"] in ("small", "large")
            x0, y0, x1, y1 = s["box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert all(round(v, 4) == v for v in s["box"])
        seen |= parts
    # the mess that re-encodes, rotates or resizes a picture keeps its scene
    assert {"clean", "exif_rotated", "grayscale", "cmyk", "gif", "png", "webp", "near_duplicate"} <= seen


def test_boxes_hold_their_shapes_in_the_decoded_images(corpus: Path, tmp_path: Path) -> None:
    """Every shape of every served picture: its box drawn onto the upright decoded image, and the
    pixels at its centre have the shape's colour. EXIF-rotated, grayscale, CMYK, palette, WebP,
    PNG, resized near-duplicate, image-only and eval rows included."""
    checked: dict[str, int] = {}
    worst = 0.0
    for r in _rows(corpus):
        if r["scene"] is None:
            continue
        pixels = _upright(r["path"])
        h, w = pixels.shape[:2]
        if r["category"] != "near_duplicate":  # a near copy may be resized; the fractions still hold
            assert (w, h) == (r["width"], r["height"]), r["url"]
        shapes = json.loads(r["scene"])["shapes"]
        for s in shapes:
            error = _colour_error(pixels, s)
            assert error <= COLOUR_TOLERANCE, (r["url"], r["category"], s, error)
            worst = max(worst, error)
        key = r["category"] if r["list"] == "urls" else r["list"]
        checked[key] = checked.get(key, 0) + len(shapes)
        if checked[key] <= 3:  # a few pictures with their boxes drawn, for a person to look at
            picture = Image.fromarray(pixels.astype(np.uint8))
            draw = ImageDraw.Draw(picture)
            for s in shapes:
                x0, y0, x1, y1 = s["box"]
                draw.rectangle((x0 * w, y0 * h, x1 * w, y1 * h), outline=(255, 255, 0))
            picture.save(tmp_path / f"{key}-{checked[key]}.png")
    for kind in ("clean", "exif_rotated", "grayscale", "near_duplicate", "images", "eval"):
        assert checked.get(kind, 0) >= 2, (kind, checked)


def test_boxes_survive_the_pipelines_resize(corpus: Path) -> None:
    """The fractions hold on the image as the build stores it (shorter side 256, aspect kept)."""
    for r in _rows(corpus)[:80]:
        if r["scene"] is None or r["fate"] != KEEP:
            continue
        with Image.open(r["path"]) as im:
            upright = ImageOps.exif_transpose(im).convert("RGB")
        scale = 256 / min(upright.size)
        small = upright.resize((round(upright.width * scale), round(upright.height * scale)), Image.Resampling.LANCZOS)
        pixels = np.asarray(small).astype(int)
        for s in json.loads(r["scene"])["shapes"]:
            assert _colour_error(pixels, s) <= COLOUR_TOLERANCE, (r["url"], s)


# ------------------------------------------------------------------ the eval list


def test_eval_list_is_clean_distinct_and_in_its_own_folder(corpus: Path) -> None:
    listed = pq.read_table(corpus / "eval.parquet")
    truth = pq.read_table(corpus / "eval_truth.parquet").to_pylist()
    assert listed.column_names == ["url", "caption", "scene"] and listed.num_rows == N_EVAL
    assert pq.read_table(corpus / "eval_truth.parquet").column_names[:4] == ["url", "fate", "clean_caption", "scene"]
    assert [t["url"] for t in truth] == [f"{BASE}/eval/e{i:06d}.jpg" for i in range(N_EVAL)]
    assert {t["fate"] for t in truth} == {KEEP} and {t["category"] for t in truth} == {"clean"}
    for row, t in zip(listed.to_pylist(), truth):
        assert (corpus / "eval" / f"{t['url'].rsplit('/', 1)[1]}").is_file()
        assert t["clean_caption"] == cap.normalise(row["caption"]) and row["scene"] is not None
        assert (t["image_format"], t["image_mode"], t["dup_group"]) == ("JPEG", "RGB", None)
        assert min(t["width"], t["height"]) >= 256 and max(t["width"], t["height"]) <= 640
        scene = json.loads(row["scene"])
        for s in scene["shapes"]:  # the caption is written from the scene
            assert s["colour"] in row["caption"].lower()
    others = [r for r in _rows(corpus) if r["list"] != "eval" and r["scene"] is not None]
    other_hashes = [image_phash(Image.fromarray(_upright(r["path"]).astype(np.uint8))) for r in others]
    for t in truth:
        h = image_phash(Image.fromarray(_upright(corpus / "eval" / t["url"].rsplit("/", 1)[1]).astype(np.uint8)))
        assert min(hamming(h, o) for o in other_hashes) > DISTINCT_BITS - 4, t["url"]
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["eval"] == {"n": N_EVAL, "rows_per_category": {"clean": N_EVAL}, "fates": {KEEP: N_EVAL}}


def _plain(out: Path, n_eval: int) -> Path:
    generate(out, 120, seed=5, base_url=BASE, n_images=40, n_texts=40, n_eval=n_eval)
    return out


def _rows_sha(path: Path) -> str:
    table = pq.read_table(path)
    if "scene" in table.column_names:
        table = table.drop_columns(["scene"])
    return hashlib.sha256(json.dumps(table.to_pylist(), sort_keys=True).encode()).hexdigest()


def test_scenes_and_the_eval_list_change_no_other_output(tmp_path: Path) -> None:
    without, with_eval = _plain(tmp_path / "a", 0), _plain(tmp_path / "b", 25)
    for name in ("urls", "truth", "images", "images_truth", "texts", "texts_truth"):
        assert (without / f"{name}.parquet").read_bytes() == (with_eval / f"{name}.parquet").read_bytes(), name
    files = sorted(p for p in (without / "images").rglob("*") if p.is_file())
    assert files and all((with_eval / p.relative_to(without)).read_bytes() == p.read_bytes() for p in files)
    assert not any((without / "eval").iterdir()) and len(list((with_eval / "eval").iterdir())) == 25
    assert pq.read_table(without / "eval.parquet").num_rows == 0
    # against the generator before scenes existed: same files, same rows, one more column
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode())
        digest.update(hashlib.sha256(p.read_bytes()).digest())
    assert (len(files), digest.hexdigest()) == BEFORE["images"]
    for name, key in (
        ("urls", "urls"),
        ("truth", "truth"),
        ("images", "images_list"),
        ("images_truth", "images_truth"),
        ("texts", "texts"),
        ("texts_truth", "texts_truth"),
    ):
        assert _rows_sha(with_eval / f"{name}.parquet") == BEFORE[key], name
    for name in ("texts.parquet", "texts_truth.parquet"):  # no scene there: the very same bytes
        assert hashlib.sha256((with_eval / name).read_bytes()).hexdigest() == BEFORE[f"{name} bytes"], name


def test_cli_writes_the_eval_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="pipelines")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sample-web", "--out", str(tmp_path), "--n", "100", "--seed", "2", "--n-eval", "12"])
    assert args.func(args) == 0
    assert "eval list: 12 rows (eval.parquet)" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "eval.parquet").num_rows == 12 == len(list((tmp_path / "eval").iterdir()))
    bad = parser.parse_args(["sample-web", "--out", str(tmp_path), "--n", "100", "--n-eval", "-1"])
    assert bad.func(bad) == 2
    assert "n_eval must be >= 0" in capsys.readouterr().err
