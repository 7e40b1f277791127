"""The demo build is byte-identical to the one recorded before the architecture change.

`configs/demo.yaml` over the 2,000-row sample web corpus (seed 0) served at the demo's
address, http://127.0.0.1:8765 (sample keys hash the URL, so the port is part of the data):
the clean version's shard, the view version's shard, the funnel and the rejects must equal
the values recorded with the code before the move (2026-12-01, this machine's pinned
libraries). A change that alters any decision, member or byte of the output fails here.

Re-recorded once since (2026-12-02): `configs/demo.yaml` gained `source.keep_columns:
[scene]`, so every sample's json carries the corpus's scene record and both shards' bytes
changed (`SHARDS`). Nothing else did: the funnel and the rejects are the recorded ones, each
json's `scene` is its row's in urls.parquet, and the shards rewritten without that one field
are byte for byte the shards recorded before (`SHARDS_BEFORE_SCENE`).

Re-recorded twice (2026-12-02, per-row scores): img2dataset no longer applies the size and
aspect-ratio limits, the image stage does, so the 37 rows rejected as `image_too_small` /
`aspect_ratio` are counted at the `image` stage instead of `download` (`FUNNEL`,
`REJECTS_SHA256`). Every row's reason and every shard byte are the recorded ones: the
rejects with those rows' stage set back to `download` hash to `REJECTS_SHA256_BEFORE`.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog.config import load_config
from catalog.shards import iter_samples, write_shard
from pipelines.sampleweb.corpus import generate
from pipelines.stages.config import BuildConfig
from pipelines.stages.pipeline import run_build
from pipelines.webserver import CorpusServer

REPO = Path(__file__).resolve().parents[2]
PORT = 8765
SHARDS = {  # recorded 2026-12-03: samples in the order of a seeded hash of the key
    1: [("v1/shards/shard-000000.tar", 1627, "f207b0d9da57a85a8fdc37a31b553409fd1c492c4015cfe97819640ecac78ecc")],
    2: [("v2/shards/shard-000000.tar", 1627, "de9cdfa78fab3c3649f3b797eb8df50496900bbe0ef05700d77f4fa371f87408")],
}
SHARDS_BEFORE_ORDER = {  # the recording of 2026-12-02, samples sorted by key then shuffled by random.Random(seed)
    1: "27f3c50d431b2a1ea731e4aa5a7da624739f66eefcca599c95c6de373916618d",
    2: "908767508141ac05bc93c09c945c212099c19028d1e3a544dd123d4c45cd24ef",
}
SHARDS_BEFORE_SCENE = {  # the recording of 2026-12-01, before the json carried `scene`
    1: "950b6664b1b95368d83b093f8589f7c02e32d25d8c6c3c0bb89b77d8bacf7fab",
    2: "73fc9e0852fb50c5810f0a75968469c757f1d7329809c97e22ed749dd462ade3",
}
REJECTS_SHA256 = (
    "6798acf97e688a61df96199a5547f61bfe150bf1c342c26fd3f4bf03ac5ff1b5"  # sha256 of the rejects rows as sorted-key JSON
)
REJECTS_SHA256_BEFORE = "29d7d57e901f16e61526aa56d0ed24abdebc8209213381331437301c785128cb"  # size checks at download
SIZE_REASONS = ("image_too_small", "aspect_ratio")
FUNNEL = json.loads(
    '{"in": 2000, "kept": 1627, "rejected": {"aspect_ratio": 17, "download_failed": 33, "duplicate_image": 29, "empty_caption": 22, "image_too_small": 20, "meaningless_caption": 50, "not_an_image": 26, "not_english": 137, "repeated_caption": 14, "single_pos": 17, "too_many_pixels": 8}, "stages": [{"in": 2000, "kept": 2000, "rejected": {}, "stage": "source"}, {"in": 2000, "kept": 1760, "rejected": {"empty_caption": 22, "meaningless_caption": 50, "not_english": 137, "repeated_caption": 14, "single_pos": 17}, "stage": "text"}, {"in": 1760, "kept": 1693, "rejected": {"download_failed": 33, "not_an_image": 26, "too_many_pixels": 8}, "stage": "download"}, {"in": 1693, "kept": 1656, "rejected": {"aspect_ratio": 17, "image_too_small": 20}, "stage": "image"}, {"in": 1656, "kept": 1627, "rejected": {"duplicate_image": 29}, "stage": "dedup"}, {"in": 1627, "kept": 1627, "rejected": {}, "stage": "shard"}]}'
)
VIEW_SCHEMA = {
    "keys": [
        "bt.cat.txt",
        "bt.spa.txt",
        "eda0.txt",
        "eda1.txt",
        "g0.jpg",
        "g1.jpg",
        "jpg",
        "json",
        "l0.jpg",
        "l1.jpg",
        "l2.jpg",
        "l3.jpg",
        "txt",
    ],
    "views": {
        "image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg", "l2.jpg", "l3.jpg"],
        "text": ["bt.cat.txt", "bt.spa.txt", "eda0.txt", "eda1.txt"],
    },
}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not _port_free(PORT):
        pytest.fail(f"127.0.0.1:{PORT} is in use; the recorded demo corpus is served there (stop `make demo`'s server)")
    tmp = tmp_path_factory.mktemp("demo")
    corpus = tmp / "sampleweb"
    generate(corpus, n=2000, seed=0, base_url=f"http://127.0.0.1:{PORT}")
    # A fresh back-translation cache: each view's recipe records whether it came from the cache.
    overrides = [
        f"root={tmp / 'data'}",
        f"source.urls={corpus / 'urls.parquet'}",
        f"augment.backtranslation.cache_dir={tmp / 'bt-cache'}",
    ]
    cfg = load_config(BuildConfig, REPO / "configs" / "demo.yaml", overrides)
    with CorpusServer(corpus, port=PORT):
        run_build(cfg, log=lambda line: None)
    return tmp / "data" / "demo"


def _manifest(dataset: Path, version: int) -> dict:
    return json.loads((dataset / f"v{version}" / "manifest.json").read_text())


@pytest.mark.parametrize("version", [1, 2])
def test_shards_are_byte_identical(demo, version):
    got = [(s["path"], s["samples"], s["sha256"]) for s in _manifest(demo, version)["shards"]]
    assert got == SHARDS[version]
    for path, _, sha in got:  # the manifest's hash is the file's
        assert hashlib.sha256((demo / path).read_bytes()).hexdigest() == sha


def test_funnel_and_rejects_unchanged(demo):
    for version in (1, 2):
        assert _manifest(demo, version)["funnel"] == FUNNEL
        rows = pq.read_table(demo / f"v{version}" / "rejects.parquet").to_pylist()
        assert hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest() == REJECTS_SHA256
        moved = [{**r, "stage": "download" if r["reason"] in SIZE_REASONS else r["stage"]} for r in rows]
        assert hashlib.sha256(json.dumps(moved, sort_keys=True).encode()).hexdigest() == REJECTS_SHA256_BEFORE


def _in_the_order_before(samples: list) -> list:
    """`samples` (key, members) in the shard order before 2026-12-03: sorted by key, then shuffled by
    random.Random(shard.seed = 0)."""
    order = sorted(range(len(samples)), key=lambda i: samples[i][0])
    random.Random(0).shuffle(order)
    return [samples[i] for i in order]


@pytest.mark.parametrize("version", [1, 2])
def test_only_the_order_changed_and_the_scene_field_was_added(demo, version, tmp_path):
    """In the earlier order the shard is the one recorded before; each json's `scene` is its
    row's, and without it the shard is the one recorded before scenes."""
    corpus = demo.parent.parent / "sampleweb"
    scenes = {r["url"]: r["scene"] for r in pq.read_table(corpus / "urls.parquet").to_pylist()}
    (shard,) = _manifest(demo, version)["shards"]
    samples = _in_the_order_before([(key, dict(members)) for key, members in iter_samples(str(demo / shard["path"]))])
    before = write_shard(str(tmp_path / "before.tar"), ((key, m.items()) for key, m in samples))
    assert before["sha256"] == SHARDS_BEFORE_ORDER[version]

    def without_scene():
        for key, members in samples:
            meta = json.loads(members["json"])
            scene = meta.pop("scene")
            assert scene is not None and scene == scenes[meta["url"]], key
            # the writers' own serialisation: the build's json.dumps, the augment job's without ASCII escapes
            members = {**members, "json": json.dumps(meta, sort_keys=True, ensure_ascii=version == 1).encode("utf-8")}
            yield key, members.items()

    rewritten = write_shard(str(tmp_path / "shard.tar"), without_scene())
    assert rewritten["sha256"] == SHARDS_BEFORE_SCENE[version]


def test_view_members_reach_the_schema(demo):
    assert _manifest(demo, 1)["schema"] == {"keys": ["jpg", "json", "txt"], "views": {"image": [], "text": []}}
    assert _manifest(demo, 2)["schema"] == VIEW_SCHEMA
