"""The sample web corpus generator: determinism, coverage of the mess, and a truth table that
agrees with the bytes on disk and with catalog.reasons' check order."""

from __future__ import annotations

import argparse
import io
import random
import re
import warnings
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from catalog.config import ConfigError
from catalog.keys import sample_key
from catalog.reasons import FATES, KEEP, first_reason
from pipelines.filters import FilterConfig, caption_repeat_key, normalize_caption
from pipelines.phash import hamming
from pipelines.sampleweb import captions as cap
from pipelines.sampleweb import category_names, generate, mess
from pipelines.sampleweb import cli as sampleweb_cli
from pipelines.sampleweb.corpus import CAPTION_CAP, NEAR_BITS, REPEAT_LIMIT, image_phash
from pipelines.sampleweb.shapes import COLOURS, RELATIONS, render, sample_scene

BASE = "http://127.0.0.1:8765"
N = 2000


def _load(out: Path) -> list[dict]:
    urls = pq.read_table(out / "urls.parquet").to_pylist()
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    assert [u["url"] for u in urls] == [t["url"] for t in truth]
    return [{**t, "caption": u["caption"], "file": _file(out, t["url"])} for u, t in zip(urls, truth)]


def _file(out: Path, url: str) -> Path | None:
    if "/status/" in url:
        return None
    return out / "images" / url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[dict]]:
    out = tmp_path_factory.mktemp("corpus")
    summary = generate(out, N, seed=7, base_url=BASE)
    return out, summary, _load(out)


@pytest.fixture(scope="module")
def decoded(corpus: tuple[Path, dict, list[dict]]) -> dict[int, dict]:
    """Every served file decoded once with PIL: upright size, format, mode, pHash (or the error)."""
    _, _, rows = corpus
    out = {}
    for i, r in enumerate(rows):
        if r["file"] is None:
            continue
        data = r["file"].read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(data))
                info = {"format": im.format, "mode": im.mode, "stored": im.size}
                if im.size[0] * im.size[1] < 50_000_000:
                    upright = ImageOps.exif_transpose(im)
                    info |= {"size": upright.size, "phash": image_phash(upright)}
                else:
                    info |= {"size": im.size}
        except OSError:  # UnidentifiedImageError, or a truncated header
            info = {"format": None}
        out[i] = info
    return out


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    a, b, c, d = (tmp_path_factory.mktemp(name) for name in ("a", "b", "c", "d"))
    generate(a, 240, seed=3, base_url=BASE)
    generate(b, 240, seed=3, base_url=BASE)
    generate(c, 240, seed=4, base_url=BASE)
    generate(d, 240, seed=3, base_url="http://127.0.0.1:9999")
    return a, b, c, d


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _parts(category: str) -> list[str]:
    return category.split("+")


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_corpus(small_runs: tuple[Path, Path, Path, Path]) -> None:
    a, b, _, _ = small_runs
    tree_a, tree_b = _tree(a), _tree(b)
    assert sorted(tree_a) == sorted(tree_b)
    assert {"urls.parquet", "truth.parquet", "corpus.json"} <= set(tree_a)
    assert len([k for k in tree_a if k.startswith("images/")]) > 200
    for name in tree_a:
        assert tree_a[name] == tree_b[name], name


def test_different_seeds_differ(small_runs: tuple[Path, Path, Path, Path]) -> None:
    a, _, c, _ = small_runs
    assert (a / "urls.parquet").read_bytes() != (c / "urls.parquet").read_bytes()
    assert (a / "truth.parquet").read_bytes() != (c / "truth.parquet").read_bytes()
    caps_a = {r["caption"] for r in _load(a)}
    caps_c = {r["caption"] for r in _load(c)}
    assert len(caps_a & caps_c) < 0.2 * len(caps_a)
    same = [
        n
        for n in _tree(a)
        if n.startswith("images/") and (c / n).is_file() and (a / n).read_bytes() == (c / n).read_bytes()
    ]
    assert same == []


def test_base_url_changes_only_the_urls(small_runs: tuple[Path, Path, Path, Path]) -> None:
    a, _, _, d = small_runs
    images = {k: v for k, v in _tree(a).items() if k.startswith("images/")}
    assert images == {k: v for k, v in _tree(d).items() if k.startswith("images/")}
    rows_a, rows_d = _load(a), _load(d)
    assert [r["url"].replace(BASE, "") for r in rows_a] == [
        r["url"].replace("http://127.0.0.1:9999", "") for r in rows_d
    ]
    assert [r["caption"] for r in rows_a] == [r["caption"] for r in rows_d]


def test_regenerating_into_a_corpus_folder_replaces_it(tmp_path: Path) -> None:
    off = {name: 0.0 for name in category_names()}
    generate(tmp_path, 30, seed=1, base_url=BASE, rates=off)
    generate(tmp_path, 12, seed=1, base_url=BASE, rates=off)
    assert len(list((tmp_path / "images").iterdir())) == 12
    assert len(_load(tmp_path)) == 12


# ------------------------------------------------------------------ coverage


def test_every_mess_category_appears_several_times(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, summary, rows = corpus
    alone = Counter(r["category"] for r in rows)
    for name in category_names():
        if name == "combined":
            assert sum("+" in r["category"] for r in rows) >= 10
        else:
            assert alone[name] >= 5, name
    assert alone["clean"] / N >= 0.6
    assert summary["rows_per_category"] == dict(sorted(alone.items()))


def test_truth_uses_only_the_reason_vocabulary(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, summary, rows = corpus
    fates = Counter(r["fate"] for r in rows)
    # no category targets the sensitive-word list or a mixed-language caption
    assert set(fates) == set(FATES) - {"sensitive", "low_english_ratio"}
    assert fates[KEEP] / N > 0.7
    assert summary["fates"] == dict(sorted(fates.items()))


def test_corpus_json_records_parameters(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, summary, _ = corpus
    assert summary["n"] == N and summary["seed"] == 7 and summary["base_url"] == BASE
    assert summary["rates"] == mess.Rates().to_dict()
    assert summary["format"] == "lipforge.sampleweb/1"


# ------------------------------------------------------------------ truth consistency


def _expected_without_groups(category: str) -> str:
    reasons = set()
    for part in _parts(category):
        for table in (mess.CAPTION_FAULTS, mess.CONTENT_FAULTS, mess.SERVER_FAULTS):
            if table.get(part):
                reasons.add(table[part])
    return first_reason(reasons) or KEEP


def test_fate_is_the_first_reason_of_the_row_faults(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    checked = 0
    for r in rows:
        if r["category"] in mess.GROUP_CATEGORIES:
            continue
        assert r["fate"] == _expected_without_groups(r["category"]), r
        checked += 1
    assert checked > 1800
    langs = ("spanish", "catalan", "german", "russian", "chinese")
    for r in rows:
        if r["category"] in langs:
            assert r["fate"] == "not_english"
    # combined rows carry faults with different reasons, so the check order decides
    conflicting = [r for r in rows if len({_expected_without_groups(p) for p in _parts(r["category"])} - {KEEP}) > 1]
    assert len(conflicting) >= 5


def test_url_path_names_the_server_behaviour(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    route = {
        "status_404": "/status/404/",
        "status_500": "/status/500/",
        "slow": "/slow/images/",
        "redirect": "/redirect/images/",
        "wrong_content_type": "/ctype/images/",
    }
    for r in rows:
        parts = _parts(r["category"])
        server = [p for p in parts if p in route]
        expected = route[server[0]] if server else "/images/"
        assert r["url"].startswith(BASE + expected), r["url"]
    assert len({r["url"] for r in rows}) == N


def test_repeated_captions(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    counts = Counter(cap.repetition_key(r["caption"]) for r in rows)
    repeated = [r for r in rows if r["category"] == "repeated_caption"]
    assert len(repeated) == mess.REPEATS
    assert {r["fate"] for r in repeated} == {"repeated_caption"}
    assert counts[cap.repetition_key(repeated[0]["caption"])] == mess.REPEATS > REPEAT_LIMIT
    assert len({r["file"].read_bytes() for r in repeated}) == mess.REPEATS  # over different images
    for r in rows:
        if counts[cap.repetition_key(r["caption"])] > REPEAT_LIMIT:
            assert r["fate"] in (
                "empty_caption",
                "meaningless_caption",
                "not_english",
                "single_pos",
                "repeated_caption",
            ), r
    ordinary = Counter(cap.repetition_key(r["caption"]) for r in rows if r["category"] == "clean")
    assert max(ordinary.values()) <= CAPTION_CAP


def test_truth_uses_the_pipelines_normaliser_repeat_key_and_limit() -> None:
    assert REPEAT_LIMIT == FilterConfig().checks["repeated_caption"].limit
    for text in ("  A&amp;B  red\tcircle ", "today\u00e2\u20ac\u2122s picture", None, "<b>x</b> <person>"):
        assert cap.normalise(text) == normalize_caption(text)
        assert cap.repetition_key(text) == caption_repeat_key(text)


def test_duplicate_groups_keep_exactly_the_smallest_key(
    corpus: tuple[Path, dict, list[dict]], decoded: dict[int, dict]
) -> None:
    _, _, rows = corpus
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        if r["dup_group"] is not None:
            groups.setdefault(r["dup_group"], []).append(i)
    assert len(groups) >= 8
    kinds = Counter()
    for members in groups.values():
        assert 2 <= len(members) <= 3
        kept = [i for i in members if rows[i]["fate"] == KEEP]
        assert len(kept) == 1
        assert rows[kept[0]]["url"] == min((rows[i]["url"] for i in members), key=sample_key)
        assert all(rows[i]["fate"] == "duplicate_image" for i in members if i != kept[0])
        category = rows[members[0]]["category"]
        kinds[category] += 1
        assert {rows[i]["category"] for i in members} == {category}
        data = {rows[i]["file"].read_bytes() for i in members}
        if category == "exact_duplicate":
            assert len(data) == 1
        else:
            assert len(data) == len(members)
            hashes = [decoded[i]["phash"] for i in members]  # members[0] is the original
            assert max(hamming(h, hashes[0]) for h in hashes) <= NEAR_BITS
    assert kinds["exact_duplicate"] >= 4 and kinds["near_duplicate"] >= 4


def test_distinct_images_are_far_apart_in_phash(
    corpus: tuple[Path, dict, list[dict]], decoded: dict[int, dict]
) -> None:
    """Nothing outside a duplicate group is within the pipeline's near-duplicate threshold (6)."""
    _, _, rows = corpus
    hashes, owners = [], []
    seen_groups = set()
    for i, info in decoded.items():
        if "phash" not in info or rows[i]["fate"] in ("image_too_small", "aspect_ratio"):
            continue
        group = rows[i]["dup_group"]
        if group is not None:
            if group in seen_groups:
                continue
            seen_groups.add(group)
        hashes.append(info["phash"])
        owners.append(i)
    arr = np.array(hashes, dtype=np.uint64)
    for k in range(len(arr) - 1):
        nearest = int(np.bitwise_count(arr[k + 1 :] ^ arr[k]).min())
        assert nearest > 8, (owners[k], nearest)


def test_images_have_the_claimed_sizes_and_formats(
    corpus: tuple[Path, dict, list[dict]], decoded: dict[int, dict]
) -> None:
    _, _, rows = corpus
    for i, r in enumerate(rows):
        if r["file"] is None:
            assert (r["width"], r["height"], r["image_format"]) == (0, 0, "")
            continue
        info = decoded[i]
        if r["image_format"] == "":
            assert info["format"] is None, r  # corrupt JPEG or HTML page
            continue
        assert (info["format"], info["mode"]) == (r["image_format"], r["image_mode"]), r
        assert info["size"] == (r["width"], r["height"]), r
    for r in rows:
        w, h, parts = r["width"], r["height"], _parts(r["category"])
        if not w:  # nothing decodable is served (error status, corrupt, HTML)
            assert r["fate"] != KEEP
            continue
        if "small_image" in parts:
            assert min(w, h) < 200
        if "wide_image" in parts:
            assert max(w, h) / min(w, h) > 3
        if "huge_image" in parts and r["file"] is not None:
            assert w * h > 100_000_000 and r["file"].stat().st_size < 100_000
        if r["fate"] == KEEP:
            assert min(w, h) >= 200 and max(w, h) / min(w, h) <= 3 and w * h <= 100_000_000
    by_category = {r["category"]: (r["image_format"], r["image_mode"]) for r in rows}
    assert by_category["png"] == ("PNG", "RGB")
    assert by_category["webp"] == ("WEBP", "RGB")
    assert by_category["gif"] == ("GIF", "P")
    assert by_category["grayscale"] == ("JPEG", "L")
    assert by_category["cmyk"] == ("JPEG", "CMYK")


def test_clean_images_are_mostly_256_to_640_px(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    sizes = [(r["width"], r["height"]) for r in rows if r["category"] == "clean" and r["width"]]
    assert len(sizes) > 1200
    assert all(256 <= w <= 640 and 256 <= h <= 640 for w, h in sizes)
    assert len(set(sizes)) > 0.9 * len(sizes)


def test_broken_files_defeat_every_decoder(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    broken = [r for r in rows if r["file"] is not None and r["fate"] == "not_an_image"]
    assert sum("corrupt_jpeg" in _parts(r["category"]) for r in broken) >= 5
    assert sum("html_as_image" in _parts(r["category"]) for r in broken) >= 5
    for r in broken:
        data = r["file"].read_bytes()
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None, r
        with pytest.raises(OSError):  # UnidentifiedImageError or "Truncated File Read"
            Image.open(io.BytesIO(data)).load()
        if "corrupt_jpeg" in _parts(r["category"]):
            assert data[:2] == b"\xff\xd8"
        else:
            assert data.startswith(b"<!DOCTYPE html>")


def test_other_formats_decode_with_opencv_too(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    for kind in ("png", "webp", "grayscale", "cmyk", "exif_rotated"):
        r = next(r for r in rows if r["category"] == kind)
        img = cv2.imdecode(np.frombuffer(r["file"].read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and sorted(img.shape[:2]) == sorted((r["height"], r["width"])), kind


def test_exif_rotated_images_store_rotated_pixels(
    corpus: tuple[Path, dict, list[dict]], decoded: dict[int, dict]
) -> None:
    _, _, rows = corpus
    orientations = Counter()
    for i, r in enumerate(rows):
        if r["category"] != "exif_rotated":
            continue
        with Image.open(r["file"]) as im:
            orientation = im.getexif().get(0x0112)
        orientations[orientation] += 1
        stored, upright = decoded[i]["stored"], decoded[i]["size"]
        assert stored == (upright[::-1] if orientation in (6, 8) else upright)
    assert set(orientations) <= {3, 6, 8} and len(orientations) >= 2


def test_clean_captions(corpus: tuple[Path, dict, list[dict]]) -> None:
    _, _, rows = corpus
    name = re.compile(rf"\b(?:{'|'.join(cap.FIRST_NAMES)}) (?:{'|'.join(cap.LAST_NAMES)})\b")
    for r in rows:
        if r["fate"] != KEEP:
            assert r["clean_caption"] == ""
            continue
        expected = normalize_caption(r["caption"])
        if r["category"] == "person_name":
            assert len(name.findall(expected)) == 1
            expected = name.sub(cap.PERSON, expected)
        assert r["clean_caption"] == expected
        assert r["clean_caption"] and "  " not in r["clean_caption"]
    messy = [r for r in rows if r["category"] == "messy_text"]
    assert all(r["caption"] != r["clean_caption"] for r in messy)
    assert any("â€" in r["caption"] for r in messy) and any("\t" in r["caption"] for r in messy)
    assert any(r["caption"] is None for r in rows)  # a null caption, as crawls have


# ------------------------------------------------------------------ captions tell the truth


def test_scene_layout_satisfies_its_relation() -> None:
    rng = random.Random(0)
    for _ in range(300):
        w, h = rng.randint(256, 640), rng.randint(256, 640)
        scene = sample_scene(rng, w, h, rng.choice((1, 2, 3)))
        for s in scene.shapes:
            assert 0 <= s.cx - s.r and s.cx + s.r <= w and 0 <= s.cy - s.r and s.cy + s.r <= h
        if len(scene.shapes) == 2:
            a, b = scene.shapes
            dx, dy = b.cx - a.cx, b.cy - a.cy
            rel = scene.relation
            assert rel in RELATIONS
            vertical = {"above": dy, "below": -dy}.get(rel)
            if vertical is not None:
                assert vertical > a.r + b.r and abs(dx) < vertical
            else:
                horizontal = {"left of": dx, "right of": -dx, "beside": abs(dx)}[rel]
                assert horizontal > a.r + b.r and abs(dy) < horizontal
        if len(scene.shapes) == 3:
            xs = [s.cx for s in scene.shapes]
            assert xs == sorted(xs)


def test_rendered_shapes_have_the_named_colour() -> None:
    rng, np_rng = random.Random(1), np.random.default_rng(1)
    solid = ("circle", "square", "hexagon", "pentagon", "cross", "diamond", "star")
    checked = 0
    for _ in range(60):
        scene = sample_scene(rng, 400, 400, 2)
        pixels = np.asarray(render(scene, np_rng)).astype(int)
        for s in scene.shapes:
            if s.kind in solid:
                got = pixels[int(round(s.cy)), int(round(s.cx))]
                assert np.abs(got - np.array(COLOURS[s.colour])).max() <= 1, s
                checked += 1
    assert checked > 40


def test_english_caption_names_every_shape() -> None:
    rng = random.Random(2)
    for _ in range(300):
        scene = sample_scene(rng, 500, 400, rng.choice((1, 2, 3)))
        text = cap.english_caption(scene, rng).lower()
        for s in scene.shapes:
            assert s.colour in text and (s.kind in text or cap._plural(s.kind) in text), (scene, text)
        if scene.relation in ("above", "below") and len({(s.kind, s.colour) for s in scene.shapes}) == 2:
            assert any(w in text for w in ("above", "below", "over", "under", "beneath", " and "))


# ------------------------------------------------------------------ errors and CLI


def test_bad_rates_and_sizes_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bogus.*allowed keys: spanish"):
        generate(tmp_path / "x", 100, seed=0, rates={"bogus": 0.1})
    with pytest.raises(ConfigError, match="spanish"):
        generate(tmp_path / "x", 100, seed=0, rates={"spanish": 2})
    with pytest.raises(ValueError, match="n=20 is too small"):
        generate(tmp_path / "x", 20, seed=0)
    assert not (tmp_path / "x").exists()
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a sample-web corpus"):
        generate(tmp_path / "y", 10, seed=0, rates={n: 0 for n in category_names()})


def test_cli_writes_a_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="pipelines")
    sampleweb_cli.add_parser(parser.add_subparsers(dest="command"))
    off = [f"--rate={name}=0" for name in category_names() if name not in ("german", "status_404")]
    args = parser.parse_args(
        ["sample-web", "--out", str(tmp_path), "--n", "40", "--seed", "9", "--base-url", "http://127.0.0.1:9999", *off]
    )
    assert args.func(args) == 0
    assert "wrote 40 rows" in capsys.readouterr().out
    rows = _load(tmp_path)
    assert Counter(r["fate"] for r in rows) == {"keep": 38, "not_english": 1, "download_failed": 1}
    assert all(r["url"].startswith("http://127.0.0.1:9999/") for r in rows)
    bad = parser.parse_args(["sample-web", "--out", str(tmp_path), "--n", "40", "--rate", "nope=1"])
    assert bad.func(bad) == 2
    assert "nope" in capsys.readouterr().err
