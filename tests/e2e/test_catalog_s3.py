"""The catalog on an s3:// root, against a real moto_server subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os

import pytest
from support.moto import moto_s3

from catalog import storage
from catalog.__main__ import run
from catalog.synthetic import make_version

BUCKET = "lipforge-catalog-test"


@pytest.fixture(scope="module")
def s3_root(tmp_path_factory):
    with moto_s3(BUCKET, {"LIPFORGE_CACHE": str(tmp_path_factory.mktemp("cache"))}) as bucket:
        root = f"{bucket}/catalog"
        v1 = make_version(root, "web", 10, seed=5, shard_size=4)
        make_version(
            root, "web", 3, seed=6, parents=["web@1"], carry_shards=[s["path"] for s in v1["shards"]], url_offset=50
        )
        yield root


def test_s3_list_show_samples_diff(s3_root, capsys):
    assert run(["--root", s3_root, "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["versions"]
    assert [(r["dataset"], r["version"], r["samples"]) for r in rows] == [("web", 1, 10), ("web", 2, 13)]
    assert run(["--root", s3_root, "show", "web@2"]) == 0
    assert "funnel: 25 in -> 13 kept" in capsys.readouterr().out
    assert run(["--root", s3_root, "samples", "web@2", "--n", "2", "--start", "10", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["position"] for r in recs] == [10, 11] and recs[0]["images"]["jpg"][
        "shard"
    ] == f"{s3_root}/web/v2/shards/shard-000000.tar"
    assert recs[0]["json"]["url"] == "http://127.0.0.1/img/50.jpg" and set(recs[0]["text_views"]) == {
        "eda0.txt",
        "eda1.txt",
        "bt.spa.txt",
    }
    assert run(["--root", s3_root, "diff", "web@1", "web@2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keys"]["added"] == 3
    index_dir = os.path.join(os.environ["LIPFORGE_CACHE"], "catalog")
    assert os.listdir(index_dir), "the index of an s3 root lives in the cache dir"


def test_s3_verify_catches_corruption(s3_root, capsys):
    assert run(["--root", s3_root, "verify", "web@2"]) == 0
    capsys.readouterr()
    shard = f"{s3_root}/web/v1/shards/shard-000001.tar"
    data = bytearray(storage.read_bytes(shard))
    data[1000] ^= 0xFF
    storage.write_bytes(shard, bytes(data))
    assert run(["--root", s3_root, "verify", "web@2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in report["shards"]] == ["ok", "mismatch", "ok", "ok"]
