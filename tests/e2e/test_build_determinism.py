"""The same input and config give the same version whatever the parallelism: one worker over
one part versus two workers over five parts (and several dedup and shard buckets) publish
the same tables row for row, byte-identical shards, and manifests equal apart from the
creation time, the root and the Ray settings."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.sampleweb.corpus import generate
from pipelines.stages import dedup, pipeline, source, text
from pipelines.stages.config import BuildConfig
from pipelines.stages.pipeline import run_build
from pipelines.webserver import CorpusServer, free_port

pytestmark = pytest.mark.slow

N = 300
FILES = ("kept.parquet", "rejects.parquet", "scores.parquet", "rejects_sample.parquet")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    port = free_port()
    generate(out, n=N, seed=11, base_url=f"http://127.0.0.1:{port}")
    with CorpusServer(out, port=port, slow_seconds=3):
        yield out


def _build(corpus: Path, root: Path, cpus: int) -> dict:
    cfg = {
        "dataset": "det",
        "root": str(root),
        "source": {"urls": str(corpus / "urls.parquet")},
        "download": {"samples_per_shard": 40, "timeout": 2},
        "shard": {"samples_per_shard": 60},
        "ray": {"num_cpus": cpus},
    }
    return run_build(BuildConfig.model_validate(cfg), log=lambda line: None)


def _comparable(manifest: dict) -> dict:
    out = {k: v for k, v in manifest.items() if k not in ("created",)}
    out["config"] = {k: v for k, v in manifest["config"].items() if k not in ("ray", "root")}
    return out


def test_one_worker_one_part_equals_two_workers_five_parts(corpus, tmp_path, monkeypatch):
    one = _build(corpus, tmp_path / "one", cpus=1)
    # the driver sizes every round: 5 source parts, several repeat-count, dedup and shard-order buckets
    monkeypatch.setattr(source, "PART_ROWS", 70)
    monkeypatch.setattr(text, "ROWS_PER_BUCKET", 60)
    monkeypatch.setattr(dedup, "ROWS_PER_BUCKET", 500)
    monkeypatch.setattr(pipeline, "BUCKET_ROWS", 40)
    five = _build(corpus, tmp_path / "five", cpus=2)
    assert json.dumps(_comparable(one), sort_keys=True) == json.dumps(_comparable(five), sort_keys=True)
    assert one["funnel"]["rejected"].get("duplicate_image") and len(one["shards"]) >= 3
    for name in FILES:  # the same rows in the same order (written in as many row groups as parts)
        a = pq.read_table(tmp_path / "one" / "det" / "v1" / name)
        b = pq.read_table(tmp_path / "five" / "det" / "v1" / name)
        assert a.num_rows and a.to_pylist() == b.to_pylist(), name
    for shard in one["shards"]:
        a = (tmp_path / "one" / "det" / shard["path"]).read_bytes()
        assert a == (tmp_path / "five" / "det" / shard["path"]).read_bytes()
