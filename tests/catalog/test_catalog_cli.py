"""Catalog CLI and library on real WebDataset shards: publish, list, show, samples, diff, verify, reindex."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from catalog import storage
from catalog.__main__ import run
from catalog.index import CatalogIndex
from catalog.shards import scan_shard
from catalog.store import Catalog
from catalog.synthetic import make_version


@pytest.fixture()
def root(tmp_path):
    r = str(tmp_path / "root")
    v1 = make_version(r, "demo", 20, seed=1)
    make_version(
        r, "demo", 5, seed=2, parents=["demo@1"], carry_shards=[s["path"] for s in v1["shards"]], url_offset=100
    )
    return r


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_publish_writes_manifest_per_formats(root):
    m = storage.read_json(os.path.join(root, "demo", "v2", "manifest.json"))
    assert m["format"] == "lipforge.manifest/1" and (m["dataset"], m["version"], m["parents"]) == (
        "demo",
        2,
        ["demo@1"],
    )
    assert m["samples"] == 25 == sum(s["samples"] for s in m["shards"])
    assert [s["path"] for s in m["shards"]][:3] == [f"v1/shards/shard-00000{i}.tar" for i in range(3)]
    assert m["schema"]["views"] == {
        "image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg"],
        "text": ["bt.spa.txt", "eda0.txt", "eda1.txt"],
    }
    assert sum(m["stats"]["caption_words"]["counts"]) == 25 and m["stats"]["person_share"] == pytest.approx(5 / 25)
    assert m["funnel"]["rejected"] == {
        "empty_caption": 2,
        "not_english": 3,
        "download_failed": 4,
        "image_too_small": 1,
        "duplicate_image": 2,
    }
    assert len(m["preview"]) == 25 and storage.read_json(os.path.join(root, "demo", "v2", "stats.json")) == m["funnel"]


def test_list_and_show(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "list", "--json")
    rows = json.loads(out)["versions"]
    assert code == 0 and [(r["dataset"], r["version"], r["samples"], r["parents"]) for r in rows] == [
        ("demo", 1, 20, []),
        ("demo", 2, 25, ["demo@1"]),
    ]
    code, out, _ = cli(capsys, "show", "demo", "--root", root)
    assert code == 0
    assert "demo@2" in out and "funnel: 37 in -> 25 kept" in out and "download_failed" in out
    assert "demo@1 -> demo@2" in out and "v1/shards/shard-000000.tar" in out
    code, out, _ = cli(capsys, "--root", root, "show", "demo@1", "--json")
    assert json.loads(out)["lineage"]["children"] == ["demo@2"]


def test_unknown_version_names_what_exists(root, capsys):
    code, _, err = cli(capsys, "--root", root, "show", "demo@7")
    assert code == 2 and "no complete version 7" in err and "[1, 2]" in err


def test_samples_show_views_and_image_locations(root, capsys):
    catalog = Catalog(root)
    catalog.refresh()
    key = catalog.page("demo", 2, 22, 1)[0].key
    code, out, _ = cli(capsys, "--root", root, "samples", "demo@2", "--key", key, "--json")
    (rec,) = json.loads(out)
    assert code == 0 and rec["key"] == key and rec["position"] == 22 and rec["shard"] == "v2/shards/shard-000000.tar"
    assert set(rec["text_views"]) == {"eda0.txt", "eda1.txt", "bt.spa.txt"} and rec["caption"]
    assert set(rec["images"]) == {"jpg", "g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg"}
    loc = rec["images"]["g0.jpg"]
    assert loc["member"] == f"{key}.g0.jpg"
    with tarfile.open(loc["shard"]) as tar:
        expected = tar.extractfile(loc["member"]).read()
    with open(loc["shard"], "rb") as f:
        f.seek(loc["offset"])
        assert f.read(loc["bytes"]) == expected
    code, out, _ = cli(capsys, "--root", root, "samples", "demo@1", "--n", "3")
    assert out.count("caption: ") == 3 and ":: " in out


def test_offset_index_matches_tar(root):
    shard = os.path.join(root, "demo", "v1", "shards", "shard-000001.tar")
    members = scan_shard(shard)
    with tarfile.open(shard) as tar:
        names = [m.name for m in tar.getmembers()]
    assert [f"{m.key}.{m.ext}" for m in members] == names
    assert members[-1].sample == 7


def test_diff_counts_keys_and_funnel(root, capsys):
    make_version(root, "demo", 6, seed=3, parents=["demo@2"], rejected={"empty_caption": 1}, url_offset=200)
    code, out, _ = cli(capsys, "--root", root, "diff", "demo@1", "demo@2", "--json")
    d = json.loads(out)
    assert code == 0 and d["samples"] == {"a": 20, "b": 25, "delta": 5}
    assert (d["keys"]["added"], d["keys"]["removed"], d["keys"]["kept"]) == (5, 0, 20)
    assert d["shards"]["added"] == ["v2/shards/shard-000000.tar"] and d["shards"]["shared"] == 3
    code, out, _ = cli(capsys, "--root", root, "diff", "demo@2", "demo@3", "--json")
    d = json.loads(out)
    assert (d["keys"]["added"], d["keys"]["removed"]) == (6, 25)
    assert d["funnel"]["rejected"] == {
        "empty_caption": -1,
        "not_english": -3,
        "download_failed": -4,
        "image_too_small": -1,
        "duplicate_image": -2,
    }
    assert d["funnel"]["kept"] == 6 - 25
    code, out, _ = cli(capsys, "--root", root, "diff", "demo@1", "demo@3")
    assert "sample keys: +6 added, -20 removed" in out


def test_verify_catches_corrupt_and_missing_shards(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "verify", "demo@2")
    assert code == 0 and out.strip().endswith("demo@2: OK")
    shard = os.path.join(root, "demo", "v1", "shards", "shard-000001.tar")
    with open(shard, "r+b") as f:
        f.seek(2000)
        byte = f.read(1)
        f.seek(2000)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, out, _ = cli(capsys, "--root", root, "verify", "demo@2", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert [r["status"] for r in report["shards"]] == ["ok", "mismatch", "ok", "ok"]
    os.unlink(os.path.join(root, "demo", "v1", "shards", "shard-000002.tar"))
    code, out, _ = cli(capsys, "--root", root, "verify", "demo@1")
    assert code == 1 and "missing" in out and "FAILED (2 of 3 shards)" in out


def test_index_rebuilt_from_manifests_equals_original(root, capsys):
    index = CatalogIndex(root)
    index.refresh()
    original = index.dump()
    assert len(original["versions"]) == 2 and len(original["shards"]) == 7
    code, out, _ = cli(capsys, "--root", root, "reindex")
    assert code == 0 and "indexed 2 versions" in out
    assert CatalogIndex(root).dump() == original
    os.unlink(index.path)
    index.refresh()
    assert index.dump() == original


def test_index_follows_manifests(root, capsys):
    index = CatalogIndex(root)
    index.refresh()
    make_version(root, "other", 3, seed=4)
    assert index.refresh() == {"added": 1, "updated": 0, "removed": 0}
    os.unlink(os.path.join(root, "demo", "v2", "manifest.json"))
    assert index.refresh() == {"added": 0, "updated": 0, "removed": 1}
    assert [(r["dataset"], r["version"]) for r in index.versions()] == [("demo", 1), ("other", 1)]
    os.makedirs(os.path.join(root, "demo", "v3", "shards"))
    assert index.refresh()["added"] == 0  # no manifest yet: incomplete and invisible


def test_bad_manifest_is_named_and_skipped(root, capsys):
    bad = os.path.join(root, "demo", "v3", "manifest.json")
    m = storage.read_json(os.path.join(root, "demo", "v2", "manifest.json"))
    del m["shards"][0]["sha256"]
    m["version"] = 3
    storage.write_json(bad, m)
    code, out, err = cli(capsys, "--root", root, "list")
    assert code == 0 and "demo@2" in out and "demo@3" not in out
    assert f"{bad}: field 'shards[0].sha256' is missing or not str" in err
    code, _, err = cli(capsys, "--root", root, "show", "demo@3")
    assert code == 2 and "shards[0].sha256" in err and bad in err


def test_entry_point_and_token_rule(root):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "catalog", "--root", root, "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and "demo@2" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "catalog", "--root", root, "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env={**env, "LIPFORGE_CATALOG_TOKEN": ""},
        timeout=120,
    )
    assert done.returncode == 2 and "requires a bearer token" in done.stderr
