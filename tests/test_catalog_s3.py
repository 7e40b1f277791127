"""The catalog on an s3:// root, against a real moto_server subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import boto3
import pytest

from catalog.__main__ import run
from catalog.synthetic import make_version
from pipelines import storage

BUCKET = "lipforge-catalog-test"


@pytest.fixture(scope="module")
def s3_root(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("moto_server") or os.path.join(os.path.dirname(os.sys.executable), "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "LIPFORGE_CACHE": str(tmp_path_factory.mktemp("cache"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                boto3.client("s3").create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        root = f"s3://{BUCKET}/catalog"
        v1 = make_version(root, "web", 10, seed=5, shard_size=4)
        make_version(root, "web", 3, seed=6, parents=["web@1"], carry_shards=[s["path"] for s in v1["shards"]], url_offset=50)
        yield root
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_s3_list_show_samples_diff(s3_root, capsys):
    assert run(["--root", s3_root, "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["versions"]
    assert [(r["dataset"], r["version"], r["samples"]) for r in rows] == [("web", 1, 10), ("web", 2, 13)]
    assert run(["--root", s3_root, "show", "web@2"]) == 0
    assert "funnel: 25 in -> 13 kept" in capsys.readouterr().out
    assert run(["--root", s3_root, "samples", "web@2", "--n", "2", "--start", "10", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["position"] for r in recs] == [10, 11] and recs[0]["images"]["jpg"]["shard"] == f"{s3_root}/web/v2/shards/shard-000000.tar"
    assert recs[0]["json"]["url"] == "http://127.0.0.1/img/50.jpg" and set(recs[0]["text_views"]) == {"eda0.txt", "eda1.txt", "bt.spa.txt"}
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
