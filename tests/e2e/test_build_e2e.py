"""End to end: the sample web corpus served on 127.0.0.1, a real local Ray, img2dataset, the filter chain.

One module-scoped build is shared by the truth, accounting, shard-format and privacy tests
(a killed build's re-run is in test_build_determinism).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from support.corpus_names import raw_names

from catalog.keys import sample_key
from catalog.reasons import KEEP
from pipelines.sampleweb.corpus import generate
from pipelines.stages.config import BuildConfig
from pipelines.stages.pipeline import built_before, run_build
from pipelines.webserver import CorpusServer, free_port

N = 2000


def build_config(corpus: Path, root: Path) -> dict:
    return {
        "dataset": "e2e",
        "root": str(root),
        "source": {"urls": str(corpus / "urls.parquet")},
        "download": {"samples_per_shard": 250, "timeout": 3, "thread_count": 16},
        "shard": {"samples_per_shard": 500},
        "ray": {"num_cpus": 2},
        "keep_work": False,
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    port = free_port()
    generate(out, n=N, seed=7, base_url=f"http://127.0.0.1:{port}")
    with CorpusServer(out, port=port, slow_seconds=6):
        yield out


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    cfg = BuildConfig.model_validate(build_config(corpus, root))
    manifest = run_build(cfg)
    return root, manifest


def _version_dir(root: Path) -> Path:
    return root / "e2e" / "v1"


def test_every_row_matches_truth(corpus, built):
    root, _ = built
    truth = pq.read_table(corpus / "truth.parquet").to_pylist()
    kept = {r["key"]: r for r in pq.read_table(_version_dir(root) / "kept.parquet").to_pylist()}
    rejects = {r["key"]: r for r in pq.read_table(_version_dir(root) / "rejects.parquet").to_pylist()}
    wrong = []
    for t in truth:
        key = sample_key(t["url"])
        got = "keep" if key in kept else rejects[key]["reason"]
        if got != t["fate"]:
            wrong.append((t["category"], t["fate"], got))
        elif got == KEEP and kept[key]["caption"] != t["clean_caption"]:
            wrong.append((t["category"], t["clean_caption"], kept[key]["caption"]))
    assert wrong == [], f"{len(wrong)} of {len(truth)} rows differ from truth, e.g. {wrong[:10]}"


def test_rerunning_a_finished_build_publishes_nothing(corpus, built):
    """The same config over the same source: no second version, the holder named, no work folder left."""
    root, manifest = built
    assert not (root / "e2e" / ".work").exists()  # removed with the last work folder
    lines: list[str] = []
    again = run_build(BuildConfig.model_validate(build_config(corpus, root)), log=lines.append)
    assert again == manifest
    assert sorted(p.name for p in (root / "e2e").iterdir() if p.name.startswith("v")) == ["v1"]
    assert any("e2e@1 already holds this build" in line for line in lines), lines
    changed = {**build_config(corpus, root), "shard": {"samples_per_shard": 400}}
    assert built_before(str(root), "e2e", BuildConfig.model_validate(changed).to_dict(), _identity(corpus)) is None


def _identity(corpus: Path) -> list[dict]:
    import hashlib

    data = (corpus / "urls.parquet").read_bytes()
    return [{"uri": str(corpus / "urls.parquet"), "sha256": hashlib.sha256(data).hexdigest()}]


TEXT_REASONS = {
    "empty_caption",
    "meaningless_caption",
    "not_english",
    "low_english_ratio",
    "single_pos",
    "sensitive",
    "repeated_caption",
}


def test_download_image_dedup_outcomes_match_truth(corpus, built):
    """The stages after `text`: exact, for every row neither truth nor the text chain rejects on text."""
    root, _ = built
    rejects = {r["key"]: r["reason"] for r in pq.read_table(_version_dir(root) / "rejects.parquet").to_pylist()}
    compared, wrong = 0, []
    for t in pq.read_table(corpus / "truth.parquet").to_pylist():
        got = rejects.get(sample_key(t["url"]), KEEP)
        if t["fate"] in TEXT_REASONS or got in TEXT_REASONS:
            continue
        compared += 1
        if got != t["fate"]:
            wrong.append((t["category"], t["fate"], got))
    assert compared > 0.8 * N and wrong == []


def test_conservation_and_manifest(built):
    root, manifest = built
    f = manifest["funnel"]
    assert f["in"] == N == f["kept"] + sum(f["rejected"].values())
    for prev, nxt in zip(f["stages"], f["stages"][1:]):
        assert prev["kept"] == nxt["in"]
        assert nxt["in"] == nxt["kept"] + sum(nxt["rejected"].values())
    vdir = _version_dir(root)
    assert json.loads((vdir / "stats.json").read_text()) == f
    assert pq.read_table(vdir / "kept.parquet").num_rows == manifest["samples"] == f["kept"]
    assert pq.read_table(vdir / "rejects.parquet").num_rows == N - f["kept"]
    assert manifest["dataset"] == "e2e" and manifest["version"] == 1 and manifest["sources"][0]["rows"] == N
    assert not (root / "e2e" / ".work" / "v1").exists()  # keep_work: false


def test_shards_are_plain_tar_and_webdataset(built):
    import webdataset as wds

    root, manifest = built
    keys = []
    for shard in manifest["shards"]:
        path = root / "e2e" / shard["path"]
        with tarfile.open(path) as tar:
            names = tar.getnames()
        assert len(names) == 3 * shard["samples"]
        for sample in wds.WebDataset(str(path), shardshuffle=False):
            meta = json.loads(sample["json"])
            assert set(sample) >= {"__key__", "jpg", "txt", "json"}
            assert sample["__key__"] == sample_key(meta["url"])
            assert min(meta["width"], meta["height"]) <= 256 and len(meta["phash"]) == 16
            keys.append(sample["__key__"])
    assert len(keys) == len(set(keys)) == manifest["samples"]
    assert keys != sorted(keys)  # shuffled


def _members(root: Path, manifest: dict, keys: set[str]) -> dict[str, dict[str, bytes]]:
    """{key: {ext: bytes}} for the samples with `keys` in the version's shards."""
    out: dict[str, dict[str, bytes]] = {}
    for shard in manifest["shards"]:
        with tarfile.open(root / "e2e" / shard["path"]) as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                if key in keys:
                    out.setdefault(key, {})[ext] = tar.extractfile(info).read()
    return out


def test_exif_rotated_images_are_stored_upright(corpus, built):
    """EXIF-rotated photos: original size in the json and the stored jpg are upright, as the truth records."""
    from PIL import Image, ImageOps

    root, manifest = built
    rows = {
        sample_key(t["url"]): t
        for t in pq.read_table(corpus / "truth.parquet").to_pylist()
        if t["category"] == "exif_rotated" and t["fate"] == KEEP
    }
    samples = _members(root, manifest, set(rows))
    assert len(rows) >= 3 and set(samples) == set(rows)

    def grey(im):
        return np.asarray(im.convert("L").resize((32, 32)), dtype=float)

    for key, t in rows.items():
        meta = json.loads(samples[key]["json"])
        assert (meta["orig_width"], meta["orig_height"]) == (t["width"], t["height"]), t["url"]
        with Image.open(io.BytesIO(samples[key]["jpg"])) as stored:
            assert stored.size == (meta["width"], meta["height"])
            assert (stored.width > stored.height) == (t["width"] > t["height"]), t["url"]
            with Image.open(corpus / "images" / t["url"].rsplit("/", 1)[1]) as served:
                assert served.getexif().get(0x0112) in (3, 6, 8)
                raw = grey(served)
                upright = grey(ImageOps.exif_transpose(served))
            got = grey(stored)
        assert np.abs(got - upright).mean() < np.abs(got - raw).mean() / 2, t["url"]


def test_no_raw_name_anywhere(corpus, built):
    root, _ = built
    names = raw_names(corpus)
    assert len(names) >= 10 and all(" " in n for n in names)
    files = [p for p in root.rglob("*") if p.is_file()]
    session = Path("/tmp/ray/session_latest")  # the build's Ray session: logs, runtime env, any spilled block
    files += [p for p in session.rglob("*") if p.is_file()]
    leaks = []
    for path in files:
        data = path.read_bytes()
        texts = [data]
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            texts += [json.dumps(table.to_pydict(), default=str).encode("utf-8")]
        leaks += [(str(path), n) for n in names for t in texts if n.encode("utf-8") in t]
    assert leaks == []
