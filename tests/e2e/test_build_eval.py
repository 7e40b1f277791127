"""Evaluation sets end to end on one local Ray (2 CPUs): the sample corpus's eval list built
with `configs/demo-eval.yaml` and refreshed, `source.keep_columns` through an image-only
build and a text-only build + refresh with their views, a local image folder with a caption
table (several captions per image, a missing image) with de-duplication off, and, where
`../shared/realdata/flickr` exists, the real-photo eval set of `configs/flickr-eval.yaml`.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from support.shared import shared_path

from catalog.config import load_config
from catalog.keys import sample_key
from catalog.raysession import RayConfig, ray_session
from catalog.reasons import KEEP
from pipelines.sampleweb import captions as cap
from pipelines.sampleweb.corpus import generate
from pipelines.sampleweb.shapes import COLOURS, render, sample_scene
from pipelines.stages.config import BuildConfig
from pipelines.stages.outputs import REJECT_COLUMNS
from pipelines.stages.pipeline import run_build
from pipelines.stages.refresh import refresh_config, run_refresh
from pipelines.stages.source import text_key
from pipelines.webserver import CorpusServer, free_port

REPO = Path(__file__).resolve().parents[2]
N_EVAL, N_IMAGES, N_TEXTS = 40, 40, 60
COLOUR_TOLERANCE = 40  # per channel, at the centre of a shape's box in the stored (resized) JPEG
FAST = ["download.timeout=3", "download.thread_count=8", "shard.samples_per_shard=25", "ray.num_cpus=2"]


def _quiet(line: str) -> None:
    pass


def _build(config: str, root: Path, *overrides: str) -> dict:
    cfg = load_config(BuildConfig, REPO / "configs" / config, [f"root={root}", *FAST, *overrides])
    return run_build(cfg, log=_quiet)


def _samples(root: Path, manifest: dict) -> dict[str, dict[str, bytes]]:
    """{key: {ext: bytes}} over a version's shards."""
    out: dict[str, dict[str, bytes]] = {}
    for shard in manifest["shards"]:
        with tarfile.open(root / manifest["dataset"] / shard["path"]) as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                out.setdefault(key, {})[ext] = tar.extractfile(info).read()
    return out


def _manifest(root: Path, dataset: str, version: int) -> dict:
    return json.loads((root / dataset / f"v{version}" / "manifest.json").read_text())


def _conserved(root: Path, manifest: dict) -> None:
    f, vdir = manifest["funnel"], root / manifest["dataset"] / f"v{manifest['version']}"
    kept, rejects = pq.read_table(vdir / "kept.parquet"), pq.read_table(vdir / "rejects.parquet")
    assert f["in"] == f["kept"] + sum(f["rejected"].values()) == kept.num_rows + rejects.num_rows
    assert rejects.column_names == REJECT_COLUMNS and f["kept"] == manifest["samples"]


@pytest.fixture(scope="module")
def cluster():
    with ray_session(RayConfig(num_cpus=2)):  # one Ray for every build of the module
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, cluster):
    out = tmp_path_factory.mktemp("evalcorpus")
    port = free_port()
    generate(out, n=60, seed=5, base_url=f"http://127.0.0.1:{port}", n_images=N_IMAGES, n_texts=N_TEXTS, n_eval=N_EVAL)
    with CorpusServer(out, port=port, slow_seconds=4):
        yield out


# ------------------------------------------------------------------ the demo eval set


@pytest.fixture(scope="module")
def demo_eval(corpus, tmp_path_factory):
    """(root, v1 manifest, v2 manifest, the 3 appended rows): demo-eval built, then refreshed
    with three clean paired rows appended to its list."""
    root = tmp_path_factory.mktemp("evalroot")
    start = time.perf_counter()
    v1 = _build("demo-eval.yaml", root, f"source.urls={corpus / 'eval.parquet'}")
    print(f"\ndemo-eval: {v1['samples']} of {N_EVAL} kept in {time.perf_counter() - start:.1f}s")
    paired = pq.read_table(corpus / "truth.parquet").to_pylist()
    urls = {r["url"]: r for r in pq.read_table(corpus / "urls.parquet").to_pylist()}
    extra = [urls[t["url"]] for t in paired if t["fate"] == KEEP and t["category"] == "clean"][:3]
    grown = root / "eval-grown.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(corpus / "eval.parquet"), pa.Table.from_pylist(extra)]), grown)
    v2 = run_refresh(refresh_config("demo-eval", str(root), None, [f"source.urls={grown}"]), log=_quiet)
    return root, v1, v2, extra


def _shape_colour_error(jpg: bytes, shape: dict) -> float:
    with Image.open(io.BytesIO(jpg)) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = shape["box"]
    x, y = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
    if shape["kind"] == "ring":  # hollow: the middle of its band
        r = (x1 - x0) / 2 * w
        x += r - max(2, int(0.35 * r)) / 2
    patch = pixels[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
    errors = np.abs(patch - np.array(COLOURS[shape["colour"]])).max(axis=1)
    return float(errors.min() if shape["kind"] == "ring" else np.median(errors))


def test_demo_eval_keeps_every_row_with_its_scene(corpus, demo_eval):
    root, v1, _, _ = demo_eval
    assert v1["funnel"]["in"] == N_EVAL == v1["funnel"]["kept"] and v1["funnel"]["rejected"] == {}
    assert v1["schema"]["keys"] == ["jpg", "json", "txt"] and v1["parents"] == []
    _conserved(root, v1)
    listed = {r["url"]: r for r in pq.read_table(corpus / "eval.parquet").to_pylist()}
    truth = {r["url"]: r for r in pq.read_table(corpus / "eval_truth.parquet").to_pylist()}
    samples = _samples(root, v1)
    assert len(samples) == N_EVAL
    shapes = 0
    for key, members in samples.items():
        meta = json.loads(members["json"])
        assert key == sample_key(meta["url"]) and meta["scene"] == listed[meta["url"]]["scene"]
        assert members["txt"].decode() == truth[meta["url"]]["clean_caption"]
        for s in json.loads(meta["scene"])["shapes"]:  # the boxes hold on the stored, resized image
            assert _shape_colour_error(members["jpg"], s) <= COLOUR_TOLERANCE, (meta["url"], s)
            shapes += 1
    assert shapes >= N_EVAL


def test_refresh_carries_the_kept_columns(demo_eval):
    root, v1, v2, extra = demo_eval
    assert v2["parents"] == ["demo-eval@1"] and v2["samples"] == N_EVAL + 3
    _conserved(root, v2)
    samples = _samples(root, v2)
    for row in extra:
        meta = json.loads(samples[sample_key(row["url"])]["json"])
        assert row["scene"] is not None and meta["scene"] == row["scene"]
    assert v2["shards"][: len(v1["shards"])] == v1["shards"]  # the old samples by reference


# ------------------------------------------------------------------ keep_columns on unimodal builds


def test_image_only_build_and_its_views_keep_the_scene(corpus, tmp_path):
    root = tmp_path / "root"
    v1 = _build(
        "demo-images.yaml",
        root,
        f"source.urls={corpus / 'images.parquet'}",
        "augment.views=[global]",
        "augment.num_workers=1",
    )
    _conserved(root, v1)
    scenes = {r["url"]: r["scene"] for r in pq.read_table(corpus / "images.parquet").to_pylist()}
    rejects = pq.read_table(root / "demo-images" / "v1" / "rejects.parquet").to_pylist()
    assert rejects and all(set(r) == set(REJECT_COLUMNS) for r in rejects)  # rejected rows as before
    assert any(scenes[r["url"]] is None for r in rejects)  # e.g. HTML pages: no scene, rejected fine
    views = _manifest(root, "demo-images", 2)
    for version in (v1, views):
        samples = _samples(root, version)
        assert len(samples) == v1["samples"] > 10
        for members in samples.values():
            meta = json.loads(members["json"])
            assert meta["scene"] == scenes[meta["url"]] and meta["scene"] is not None
            assert ("views" in meta) == (version is views)


def test_text_only_build_refresh_and_views_keep_a_column(corpus, tmp_path):
    root = tmp_path / "root"
    captions = pq.read_table(corpus / "texts.parquet").column("caption").to_pylist()
    fates = [t["fate"] for t in pq.read_table(corpus / "texts_truth.parquet").to_pylist()]
    first_kept = fates.index(KEEP)
    ids = [None if i == first_kept else f"t{i}" for i in range(len(captions))]
    source = root.parent / "texts.parquet"
    pq.write_table(pa.table({"caption": captions, "source_id": ids}), source)
    common = [f"root={root}", "ray.num_cpus=2", "shard.samples_per_shard=25"]
    data = {
        "dataset": "texts",
        "source": {"urls": str(source), "modality": "text", "keep_columns": ["source_id"]},
        "augment": {"views": ["eda"], "num_workers": 1},
    }
    config = root.parent / "texts.yaml"
    config.write_text(json.dumps(data))
    run_build(load_config(BuildConfig, config, common), log=_quiet)
    grown = root.parent / "texts-grown.parquet"
    new = ["a small red circle above a large blue square", "a green heart on a striped background"]
    pq.write_table(pa.table({"caption": captions + new, "source_id": ids + ["n0", "n1"]}), grown)
    run_refresh(refresh_config("texts", str(root), None, [f"source.urls={grown}"]), log=_quiet)
    expected = {text_key(i, c or ""): v for i, (c, v) in enumerate(zip(captions + new, ids + ["n0", "n1"]))}
    for version in (1, 2, 3, 4):  # build, its views, refresh, its views
        manifest = _manifest(root, "texts", version)
        _conserved(root, manifest)
        got = {}
        for key, members in _samples(root, manifest).items():
            meta = json.loads(members["json"])
            assert ("views" in meta) == (version in (2, 4))
            got[key] = meta["source_id"]
        assert got == {k: expected[k] for k in got} and len(got) == manifest["samples"]
        assert None in got.values()  # the null of the first kept row, as JSON null
        assert ({"n0", "n1"} <= set(got.values())) == (version >= 3)


# ------------------------------------------------------------------ a local folder of images


def _photo_folder(folder: Path) -> list[tuple[str, str]]:
    """Three listed images (one missing), two English captions each: (file, caption) rows."""
    folder.mkdir()
    rng, np_rng = random.Random(0), np.random.default_rng(0)
    rows = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        scene = sample_scene(rng, 320, 260, 1)
        if name != "c.jpg":  # c.jpg is listed but was never saved
            render(scene, np_rng).save(folder / name, quality=90)
        rows += [(name, cap.english_caption(scene, rng)) for _ in range(2)]
    return rows


def test_folder_source_build_keeps_every_caption_and_rejects_the_missing_image(tmp_path, cluster):
    folder, root = tmp_path / "photos", tmp_path / "root"
    rows = _photo_folder(folder)
    (folder / "captions.tsv").write_text("file\tcaption\n" + "".join(f"{f}\t{c}\n" for f, c in rows), encoding="utf-8")
    v1 = _build("flickr-eval.yaml", root, f"source.urls={folder}", "source.caption_table=captions.tsv")
    f = v1["funnel"]
    assert (f["in"], f["kept"], f["rejected"]) == (6, 4, {"download_failed": 2})
    assert [s["stage"] for s in f["stages"]] == ["source", "text", "download", "image", "dedup", "shard"]
    _conserved(root, v1)
    rejects = pq.read_table(root / "flickr-eval" / "v1" / "rejects.parquet").to_pylist()
    base = folder.resolve().as_uri()
    assert sorted(r["url"] for r in rejects) == [f"{base}/c.jpg#0", f"{base}/c.jpg#1"]
    by_file: dict[str, list[dict]] = {}
    for members in _samples(root, v1).values():
        meta = json.loads(members["json"])
        name, _, k = meta["url"].removeprefix(base + "/").partition("#")
        assert meta["file"] == name and k in ("0", "1")
        by_file.setdefault(name, []).append({**meta, "jpg": members["jpg"], "txt": members["txt"].decode()})
    assert sorted(by_file) == ["a.jpg", "b.jpg"]
    for name, samples in by_file.items():  # both captions survive, and share the image's bytes
        assert sorted(s["txt"] for s in samples) == sorted(cap.normalise(c) for f, c in rows if f == name)
        assert len({s["jpg"] for s in samples}) == 1


@pytest.mark.slow
def test_flickr_eval_set(tmp_path, cluster):
    flickr = shared_path("realdata", "flickr")
    root = tmp_path / "root"
    cfg = load_config(
        BuildConfig, REPO / "configs" / "flickr-eval.yaml", [f"root={root}", f"source.urls={flickr}", "ray.num_cpus=2"]
    )
    start = time.perf_counter()
    manifest = run_build(cfg, log=_quiet)
    seconds = time.perf_counter() - start
    f = manifest["funnel"]
    print(f"\nflickr-eval: {f['kept']} of {f['in']} kept in {seconds:.0f}s; rejected {f['rejected']}")
    assert f["in"] == 5000 and f["kept"] >= 4900
    for prev, nxt in zip(f["stages"], f["stages"][1:]):
        assert prev["kept"] == nxt["in"] == nxt["kept"] + sum(nxt["rejected"].values())
    assert f["stages"][4] == {
        "stage": "dedup",
        "in": f["stages"][3]["kept"],
        "kept": f["stages"][3]["kept"],
        "rejected": {},
    }
    _conserved(root, manifest)
    images: dict[str, set[bytes]] = {}
    for members in _samples(root, manifest).values():
        images.setdefault(json.loads(members["json"])["file"], set()).add(members["jpg"])
    assert len(images) >= 990 and all(len(v) == 1 for v in images.values())  # one stored image per photo
