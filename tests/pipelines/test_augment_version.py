"""augment_version end to end on a small hand-made version: local Ray, real apertium and WordNet."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml
from support.augment_fixtures import write_version

from augment.config import AugmentConfig
from catalog import storage, versions
from catalog.config import ConfigError
from pipelines.views.cli import load_augment_config
from pipelines.views.job import augment_version


def _samples(path: str) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for info in tar:
            key, _, ext = info.name.partition(".")
            out.setdefault(key, {})[ext] = tar.extractfile(info).read()  # type: ignore[union-attr]
    return out


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_augment_version_end_to_end(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    parent = write_version(root)
    cfg = AugmentConfig(backtranslation={"cache_dir": str(tmp_path / "cache")}, num_workers=2)
    new = augment_version(root, "tiny", 1, cfg, num_cpus=2)
    assert new == 2 and versions.version_numbers(root, "tiny") == [1, 2]
    m = versions.load_manifest(root, "tiny@2")
    assert m["parents"] == ["tiny@1"] and m["samples"] == 5 and [s["samples"] for s in m["shards"]] == [3, 2]
    assert m["shards"][0]["path"] == "v2/shards/shard-000000.tar"
    assert m["schema"]["views"] == {
        "image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg", "l2.jpg", "l3.jpg"],
        "text": ["bt.cat.txt", "bt.spa.txt", "eda0.txt", "eda1.txt"],
    }
    assert set(m["schema"]["keys"]) == {"jpg", "txt", "json"} | {e for v in m["schema"]["views"].values() for e in v}
    assert m["funnel"] == parent["funnel"] and m["stats"]["person_share"] == 0.2
    views = m["stats"]["views"]
    assert views["global"]["produced"] == 10 and views["local"]["produced"] == 20 and views["eda"]["produced"] == 10
    assert (
        views["bt"]["ok"]
        + views["bt"].get("identical", 0)
        + views["bt"].get("empty", 0)
        + views["bt"].get("lost_token", 0)
        == 10
    )
    assert views["global"]["bytes_per_sample"] > 1000
    for name in ("kept.parquet", "rejects.parquet", "stats.json"):
        assert storage.read_bytes(str(tmp_path / "data/tiny/v2" / name)) == storage.read_bytes(
            str(tmp_path / "data/tiny/v1" / name)
        )
    seen = 0
    for shard in versions.shard_uris(root, m):
        for key, members in _samples(shard).items():
            seen += 1
            meta = json.loads(members["json"])
            assert set(meta["views"]) == {"g0", "g1", "l0", "l1", "l2", "l3", "eda0", "eda1", "bt.spa", "bt.cat"}
            for ext in (
                "jpg",
                "txt",
                "g0.jpg",
                "g1.jpg",
                "l0.jpg",
                "l1.jpg",
                "l2.jpg",
                "l3.jpg",
                "eda0.txt",
                "eda1.txt",
            ):
                assert ext in members, (key, ext)
            for pivot in ("spa", "cat"):
                status = meta["views"][f"bt.{pivot}"]["status"]
                assert (f"bt.{pivot}.txt" in members) == (status == "ok")
            if b"<person>" in members["txt"]:
                for ext in ("eda0.txt", "eda1.txt", "bt.spa.txt", "bt.cat.txt"):
                    assert ext not in members or members[ext].count(b"<person>") == 1, (ext, members[ext])
            assert meta["url"].startswith("http://127.0.0.1:1/")
    assert seen == 5
    # a second run on the same captions hits the persistent translation cache
    again = augment_version(root, "tiny", 1, cfg, num_cpus=2)
    assert again == 3 and versions.load_manifest(root, "tiny@3")["stats"]["views"]["bt"]["cached"] == 10


def test_config_file_section_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({"dataset": "x", "root": "/r", "augment": {"views": ["eda"], "eda": {"views": 3}}}))
    cfg, root = load_augment_config(str(path), ["seed=5"])
    assert root == "/r" and cfg.views == ["eda"] and cfg.eda.views == 3 and cfg.seed == 5
    path.write_text(yaml.safe_dump({"augment": {"views": ["eda", "mosaic"]}}))
    with pytest.raises(ConfigError, match="unknown view kinds \\['mosaic'\\]"):
        load_augment_config(str(path), [])
    path.write_text(
        yaml.safe_dump({"augment": {"image": {"local_views": {"count": 4, "size": 96, "scale": [0.5, 0.1]}}}})
    )
    with pytest.raises(ConfigError, match="image.local_views"):
        load_augment_config(str(path), [])
