"""Refresh end to end: build demo@1 from the first 300 rows of a sample corpus, grow the source
list, `python -m pipelines refresh demo` -> demo@2 with only the new rows processed; a second
refresh publishes nothing. Real local Ray, img2dataset and CorpusServer on 127.0.0.1.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.__main__ import run as catalog_run
from catalog.cli import run as pipelines_run
from catalog.keys import sample_key
from pipelines.__main__ import COMMANDS
from pipelines.sampleweb.corpus import generate
from pipelines.stages.config import BuildConfig
from pipelines.stages.funnel import ConservationError
from pipelines.stages.pipeline import run_build
from pipelines.stages.refresh import add_funnels
from pipelines.webserver import CorpusServer, free_port

N_OLD, N_CORPUS, N_REPEAT = 300, 400, 10


def _write_source(path: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("url", pa.string()), ("caption", pa.string())])), path)


def _tables(vdir: Path) -> tuple[dict, dict]:
    kept = {r["key"]: r for r in pq.read_table(vdir / "kept.parquet").to_pylist()}
    rejects = {r["key"]: r for r in pq.read_table(vdir / "rejects.parquet").to_pylist()}
    return kept, rejects


def _shard_keys(dataset_dir: Path, manifest: dict) -> list[str]:
    keys = []
    for shard in manifest["shards"]:
        with tarfile.open(dataset_dir / shard["path"]) as tar:
            keys += [n.split(".", 1)[0] for n in tar.getnames() if n.endswith(".json")]
    return keys


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """(corpus dir, root, v1 manifest, source rows of the refresh, output of both refreshes)."""
    work = tmp_path_factory.mktemp("refresh")
    corpus, root, src = work / "corpus", work / "root", work / "urls.parquet"
    port = free_port()
    generate(corpus, n=N_CORPUS, seed=11, base_url=f"http://127.0.0.1:{port}")
    rows = pq.read_table(corpus / "urls.parquet").select(["url", "caption"]).to_pylist()
    with CorpusServer(corpus, port=port, slow_seconds=4):
        _write_source(src, rows[:N_OLD])
        cfg = {
            "dataset": "demo",
            "root": str(root),
            "source": {"urls": str(src)},
            "ray": {"num_cpus": 2},
            "download": {"samples_per_shard": 100, "timeout": 3, "thread_count": 16},
            "shard": {"samples_per_shard": 80},
        }
        v1 = run_build(BuildConfig.model_validate(cfg), log=lambda _: None)
        kept1, _ = _tables(root / "demo" / "v1")
        anchor = next(r for r in rows[:N_OLD] if sample_key(r["url"]) in kept1)
        extra = [
            {"url": anchor["url"] + "?copy=1", "caption": "a copy of an image kept in version one"}
        ]  # exact duplicate
        extra += [
            {
                "url": f"http://127.0.0.1:{port}/images/gone-{i}.jpg",
                "caption": kept1[sample_key(anchor["url"])]["caption"],
            }
            for i in range(N_REPEAT)
        ]  # 1 old + 10 new occurrences: > 10 only when counted over the whole list
        source = rows + extra
        _write_source(src, source)
        assert "pipelines.stages.refresh" in COMMANDS
        assert pipelines_run("python -m pipelines", "", COMMANDS, ["refresh", "demo", "--root", str(root)]) == 0
        v2 = json.loads((root / "demo" / "v2" / "manifest.json").read_text())
    return corpus, root, v1, v2, source, anchor


def test_only_new_rows_are_added(refreshed):
    corpus, root, v1, v2, source, anchor = refreshed
    kept1, rej1 = _tables(root / "demo" / "v1")
    kept2, rej2 = _tables(root / "demo" / "v2")
    old_keys = set(kept1) | set(rej1)
    new_keys = {sample_key(r["url"]) for r in source} - old_keys
    assert len(new_keys) == N_CORPUS - N_OLD + 1 + N_REPEAT
    # carried rows keep their outcome; every new row is decided exactly once
    assert {k: kept2[k] for k in kept1} == kept1 and {k: rej2[k] for k in rej1} == rej1
    assert set(kept2) | set(rej2) == old_keys | new_keys and not set(kept2) & set(rej2)
    assert all(kept2[k]["shard"].startswith("v2/shards/") for k in set(kept2) - set(kept1))
    # new rows outside duplicate groups get the corpus truth (computed over all 400 rows)
    truth = {sample_key(t["url"]): t for t in pq.read_table(corpus / "truth.parquet").to_pylist()}
    wrong = [
        (t["category"], t["fate"], "keep" if k in kept2 else rej2[k]["reason"])
        for k, t in truth.items()
        if k in new_keys and t["dup_group"] is None and t["fate"] != ("keep" if k in kept2 else rej2[k]["reason"])
    ]
    assert wrong == []
    # de-duplicated against the carried images; repeated-caption count over old + new rows
    assert rej2[sample_key(anchor["url"] + "?copy=1")]["reason"] == "duplicate_image"
    repeats = [rej2[sample_key(r["url"])]["reason"] for r in source[-N_REPEAT:]]
    assert repeats == ["repeated_caption"] * N_REPEAT


def test_manifest_parents_shards_and_funnel(refreshed):
    _, root, v1, v2, source, _ = refreshed
    dataset = root / "demo"
    _, rej1 = _tables(dataset / "v1")
    kept2, rej2 = _tables(dataset / "v2")
    assert (v2["version"], v2["parents"]) == (2, ["demo@1"])
    assert v2["shards"][: len(v1["shards"])] == v1["shards"]  # carried by reference: same path, size, sha256
    new_shards = v2["shards"][len(v1["shards"]) :]
    assert new_shards and all(s["path"].startswith("v2/shards/") for s in new_shards)
    assert sorted(p.name for p in (dataset / "v2" / "shards").iterdir()) == sorted(
        Path(s["path"]).name for s in new_shards
    )
    keys = _shard_keys(dataset, v2)
    assert len(keys) == len(set(keys)) == v2["samples"] == len(kept2) == v2["funnel"]["kept"]
    assert set(keys) == set(kept2)
    f = v2["funnel"]
    assert f["in"] == len(source) == len(kept2) + len(rej2) == f["kept"] + sum(f["rejected"].values())
    new_rejects = Counter(rej2[k]["reason"] for k in set(rej2) - set(rej1))
    assert Counter(f["rejected"]) == Counter(v1["funnel"]["rejected"]) + new_rejects
    assert f["stages"][0]["in"] - v1["funnel"]["stages"][0]["in"] == len(source) - v1["funnel"]["in"]
    for s, s1 in zip(f["stages"], v1["funnel"]["stages"]):
        assert s["stage"] == s1["stage"] and s["kept"] >= s1["kept"]
        assert s["in"] - s1["in"] == s["kept"] - s1["kept"] + sum(s["rejected"].values()) - sum(s1["rejected"].values())
    assert json.loads((dataset / "v2" / "stats.json").read_text()) == f
    assert v2["schema"] == {"keys": ["jpg", "json", "txt"], "views": {"image": [], "text": []}}
    assert catalog_run(["--root", str(root), "verify", "demo@2"]) == 0


def test_add_funnels_adds_stage_by_stage():
    a = {
        "in": 5,
        "kept": 2,
        "rejected": {"not_english": 3},
        "stages": [
            {"stage": "source", "in": 5, "kept": 5, "rejected": {}},
            {"stage": "text", "in": 5, "kept": 2, "rejected": {"not_english": 3}},
        ],
    }
    b = {
        "in": 2,
        "kept": 0,
        "rejected": {"empty_caption": 2},
        "stages": [
            {"stage": "source", "in": 2, "kept": 2, "rejected": {}},
            {"stage": "text", "in": 2, "kept": 0, "rejected": {"empty_caption": 2}},
        ],
    }
    assert add_funnels(a, b) == {
        "in": 7,
        "kept": 2,
        "rejected": {"empty_caption": 2, "not_english": 3},
        "stages": [
            {"stage": "source", "in": 7, "kept": 7, "rejected": {}},
            {"stage": "text", "in": 7, "kept": 2, "rejected": {"empty_caption": 2, "not_english": 3}},
        ],
    }
    with pytest.raises(ConservationError, match="cannot add funnels"):
        add_funnels(a, {**b, "stages": b["stages"][:1]})


def test_second_refresh_publishes_nothing(refreshed, capsys):
    _, root, _, _, _, _ = refreshed
    assert sorted(p.name for p in (root / "demo").iterdir() if p.name.startswith("v")) == ["v1", "v2"]
    assert pipelines_run("python -m pipelines", "", COMMANDS, ["refresh", "demo", "--root", str(root)]) == 0
    assert "nothing new, nothing published" in capsys.readouterr().out
    assert not (root / "demo" / "v3").exists() and not (root / "demo" / ".work" / "v3").exists()
