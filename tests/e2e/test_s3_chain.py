"""The whole chain with every location on s3://, each step through the real CLI as a subprocess.

A real `moto_server` on 127.0.0.1 holds the bucket; the sample web corpus is served on
127.0.0.1 (its /slow/ URLs wait 20 s against a 5 s download timeout, so they always time
out). In order, as a user would run it:
1. `python -m pipelines build cfg.yaml`: the source list is an s3:// FOLDER of two parquet
   files, the catalog root is s3://; demo@1's funnel conserves rows.
2. A third source file (sorting last) is uploaded; `python -m pipelines refresh demo --root
   s3://...` publishes demo@2 on S3 with only the new rows processed (old outcomes and shards
   carried unchanged, the funnel the parent's plus the new rows').
3. `python -m training train run.yaml` (tiny CLIP, a few steps) on demo@latest, Ray Train
   checkpoints to s3://.../ckpt, the end-of-run evaluation recorded in the s3:// catalog;
   then `python -m training eval RUN --storage s3://.../ckpt` loads the checkpoint from S3
   and records a second evaluation.
4. The credentials (distinctive values, given only through the environment) are written
   nowhere: not in any object of the bucket, any file under the test's folders (configs,
   job logs, training logs, the catalog cache) or the Ray session folders the runs named
   (each CLI gets a RAY_TMPDIR of the test's own, so its Ray is its own); and no version's
   stored config has a credential field.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from support.moto import moto_s3

from catalog import models, storage
from catalog.keys import sample_key
from pipelines.sampleweb.corpus import generate
from pipelines.webserver import CorpusServer, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUCKET = "lipforge-chain"
KEY_ID = "LFKEYID7Q2W9E4R1T6Y3"
SECRET = "lf-secret-Zx81-never-written"
N, N_OLD = 120, 100  # corpus rows; the first N_OLD go into the two files of the build
RUN = "s3chain"
SESSION_LINE = re.compile(r"Ray worker logs are under (/\S+)")


def cli(work: Path, ray_tmp: str, *args: str, timeout: float = 600) -> str:
    """`python -m ARGS` in `work` with this environment (the AWS variables included); its output.
    RAY_TMPDIR: a Ray of its own (a cluster another process `ray start`ed on this machine is
    recorded under /tmp/ray, and `ray.init()` would join it), its sessions where the test finds them."""
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_TMPDIR=ray_tmp)
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    with (work / "console.log").open("a") as f:
        f.write(f"$ {' '.join(args)}\n{done.stdout}\n")
    assert done.returncode == 0, f"{args}: {done.stdout[-4000:]}"
    return done.stdout


def upload(uri: str, rows: list[dict]) -> None:
    sink = pa.BufferOutputStream()
    schema = pa.schema([("url", pa.string()), ("caption", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    storage.write_bytes(uri, sink.getvalue().to_pybytes())


def read_table(uri: str) -> dict[str, dict]:
    with storage.open_read(uri) as f:
        return {r["key"]: r for r in pq.read_table(f).to_pylist()}


@pytest.fixture(scope="module")
def ray_tmp():
    """The RAY_TMPDIR of the runs: short, as Ray's socket paths live under it."""
    path = tempfile.mkdtemp(prefix="lf-s3chain-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("s3chain")


@pytest.fixture(scope="module")
def bucket(work):
    """The moto bucket; the credentials (and the catalog cache) in the environment meanwhile."""
    extra = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "LIPFORGE_CACHE": str(work / "cache")}
    with moto_s3(BUCKET, extra) as uri:
        yield uri


@pytest.fixture(scope="module")
def chain(work, bucket, ray_tmp):
    corpus = work / "corpus"
    port = free_port()
    generate(corpus, n=N, seed=23, base_url=f"http://127.0.0.1:{port}")
    rows = pq.read_table(corpus / "urls.parquet").select(["url", "caption"]).to_pylist()
    with CorpusServer(corpus, port=port, slow_seconds=20):
        root = f"{bucket}/datasets"
        upload(f"{bucket}/in/part-0.parquet", rows[:50])
        upload(f"{bucket}/in/part-1.parquet", rows[50:N_OLD])
        cfg = {
            "dataset": "demo",
            "root": root,
            "source": {"urls": f"{bucket}/in/"},
            "ray": {"num_cpus": 2},
            "download": {"samples_per_shard": 100, "timeout": 5, "thread_count": 16},
            "shard": {"samples_per_shard": 40},
        }
        (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
        cli(work, ray_tmp, "pipelines", "build", "cfg.yaml")
        v1 = storage.read_json(f"{root}/demo/v1/manifest.json")
        kept1, rej1 = read_table(f"{root}/demo/v1/kept.parquet"), read_table(f"{root}/demo/v1/rejects.parquet")

        upload(f"{bucket}/in/part-2.parquet", rows[N_OLD:])
        cli(work, ray_tmp, "pipelines", "refresh", "demo", "--root", root)
        v2 = storage.read_json(f"{root}/demo/v2/manifest.json")

        (work / "run.yaml").write_text(
            yaml.safe_dump(
                {
                    "dataset": "demo@latest",
                    "root": root,
                    "steps": 12,
                    "batch_size": 8,
                    "model": {"preset": "tiny"},
                    "objectives": {"clip": {"weight": 1.0}},
                    "data": {"num_workers": 1},
                    "optim": {"lr": 0.002, "weight_decay": 0.05},
                    "schedule": {"warmup_steps": 2},
                    "checkpoint": {"storage": f"{bucket}/ckpt", "every_steps": 6, "keep": 2},
                    "run": {"name": RUN, "log_every": 2, "log_dir": "./logs"},
                    "eval": {"sets": ["demo@1"], "tasks": {"retrieval": {}}},
                }
            )
        )
        train_out = cli(work, ray_tmp, "training", "train", "run.yaml")
        eval_out = cli(
            work,
            ray_tmp,
            "training",
            "eval",
            RUN,
            "--storage",
            f"{bucket}/ckpt",
            "--set",
            "eval.sets=[demo@2]",
            "--json",
        )
        yield {
            "work": work,
            "bucket": bucket,
            "root": root,
            "rows": rows,
            "v1": v1,
            "v2": v2,
            "kept1": kept1,
            "rej1": rej1,
            "train_out": train_out,
            "eval_out": eval_out,
            "ray_tmp": ray_tmp,
        }


def test_build_from_an_s3_folder_conserves_rows(chain):
    v1, root = chain["v1"], chain["root"]
    f = v1["funnel"]
    assert f["in"] == N_OLD == f["kept"] + sum(f["rejected"].values())
    assert f["kept"] == v1["samples"] == len(chain["kept1"]) and len(chain["rej1"]) == N_OLD - f["kept"]
    assert f["rejected"].get("download_failed", 0) > 0  # the slow URLs timed out
    assert [(s["uri"], s["rows"]) for s in v1["sources"]] == [
        (f"{chain['bucket']}/in/part-0.parquet", 50),
        (f"{chain['bucket']}/in/part-1.parquet", N_OLD - 50),
    ]
    assert set(chain["kept1"]) | set(chain["rej1"]) == {sample_key(r["url"]) for r in chain["rows"][:N_OLD]}
    total = 0
    for shard in v1["shards"]:
        with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(f"{root}/demo/{shard['path']}"))) as tar:
            total += len(tar.getnames()) // 3
    assert total == v1["samples"] > 0
    assert storage.read_json(f"{root}/demo/v1/stats.json") == f


def test_refresh_on_s3_processes_only_the_new_file(chain):
    root, v1, v2 = chain["root"], chain["v1"], chain["v2"]
    kept1, rej1 = chain["kept1"], chain["rej1"]
    kept2, rej2 = read_table(f"{root}/demo/v2/kept.parquet"), read_table(f"{root}/demo/v2/rejects.parquet")
    new_keys = {sample_key(r["url"]) for r in chain["rows"][N_OLD:]}
    old_keys = set(kept1) | set(rej1)
    assert len(new_keys) == N - N_OLD and not new_keys & old_keys
    # carried rows keep their outcome; every new row is decided exactly once
    assert {k: kept2[k] for k in kept1} == kept1 and {k: rej2[k] for k in rej1} == rej1
    assert set(kept2) | set(rej2) == old_keys | new_keys and not set(kept2) & set(rej2)
    assert all(kept2[k]["shard"].startswith("v2/shards/") for k in set(kept2) - set(kept1))
    # lineage, shards carried by reference, the new ones on S3 under v2/shards/
    assert (v2["version"], v2["parents"]) == (2, ["demo@1"])
    assert v2["shards"][: len(v1["shards"])] == v1["shards"]
    new_shards = v2["shards"][len(v1["shards"]) :]
    assert new_shards and all(s["path"].startswith("v2/shards/") for s in new_shards)
    assert sorted(storage.listdir(f"{root}/demo/v2/shards")) == sorted(Path(s["path"]).name for s in new_shards)
    assert [s["rows"] for s in v2["sources"]] == [50, N_OLD - 50, N - N_OLD]
    # the funnel: the parent's plus the new rows', stage by stage
    f, f1 = v2["funnel"], v1["funnel"]
    assert f["in"] == N == len(kept2) + len(rej2) == f["kept"] + sum(f["rejected"].values())
    assert f["kept"] == v2["samples"] == len(kept2)
    assert f["stages"][0]["in"] - f1["stages"][0]["in"] == N - N_OLD
    for s, s1 in zip(f["stages"], f1["stages"]):
        assert s["stage"] == s1["stage"] and s["kept"] >= s1["kept"]
        assert s["in"] - s1["in"] == s["kept"] - s1["kept"] + sum(s["rejected"].values()) - sum(s1["rejected"].values())
    assert not storage.exists(f"{root}/demo/v3")


def test_training_checkpoints_and_evaluations_on_s3(chain):
    root, bucket = chain["root"], chain["bucket"]
    summary = json.loads((chain["work"] / "logs" / RUN / "summary.json").read_text())
    assert summary["step"] == 12 and summary["dataset"] == "demo@2"
    run_dir = f"{bucket}/ckpt/{RUN}"
    ckpts = sorted(n for n in storage.listdir(run_dir) if n.startswith("checkpoint-"))
    assert ckpts == ["checkpoint-00000006", "checkpoint-00000012"]
    for name in ckpts:
        # Ray Train's pyarrow writes a `name/` folder object too, which `storage.listdir` (s3fs) lists as `name`
        assert [n for n in storage.listdir(f"{run_dir}/{name}") if n != name] == ["rng-rank0.pt", "state.pt"]
    assert summary["checkpoint"].rstrip("/") == f"{run_dir}/checkpoint-00000012"  # a uri another command can open
    run = models.load_run(root, RUN)
    assert run["status"] == "finished" and run["step"] == 12
    assert [c["path"].rstrip("/") for c in run["checkpoints"]][-1] == f"{run_dir}/checkpoint-00000012"
    assert run["datasets"]["demo@2"]["samples_seen"] == 12 * 8
    assert "eval" in run["datasets"]["demo@1"]["roles"]
    assert [(e["step"], e["set"]) for e in run["evals"]] == [(12, "demo@1"), (12, "demo@2")]
    # each evaluation read every sample of its version on S3
    assert [e["metrics"]["retrieval/images"] for e in run["evals"]] == [chain["v1"]["samples"], chain["v2"]["samples"]]
    assert all("retrieval/i2t_r1" in e["metrics"] for e in run["evals"])
    assert storage.exists(f"{root}/.runs/{RUN}/run.json") and storage.exists(f"{root}/.runs/{RUN}/evals.jsonl")
    printed = json.loads(chain["eval_out"][chain["eval_out"].index("[") :])
    assert [r["set"] for r in printed] == ["demo@2"]


def _credential_fields(value, where: str = "config") -> list[str]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if re.search(r"secret|access_key|key_id|credential|password|session_token|aws_", str(k), re.I):
                found.append(f"{where}.{k}")
            found += _credential_fields(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _credential_fields(v, f"{where}[{i}]")
    elif isinstance(value, str) and (KEY_ID in value or SECRET in value):
        found.append(where)
    return found


def _leaks(name: str, data: bytes) -> list[str]:
    """`name` where either credential occurs in `data`, raw or (a parquet file) decoded."""
    texts = [data]
    if name.endswith(".parquet"):  # a compressed column might hide a plain string from the raw search
        texts.append(json.dumps(pq.read_table(pa.BufferReader(data)).to_pylist(), default=str).encode())
    return [name for t in texts for n in (KEY_ID, SECRET) if n.encode() in t]


def test_credentials_are_written_nowhere(chain):
    import boto3

    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == (
        KEY_ID,
        SECRET,
    )  # what the runs got
    leaks: list[str] = []
    s3 = boto3.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    assert (
        len(keys) > 20
        and any(k.startswith("ckpt/") for k in keys)
        and any(k.startswith("datasets/.runs/") for k in keys)
    )
    for key in keys:
        data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        leaks += _leaks(f"s3://{BUCKET}/{key}", data)
        if key.endswith(".json"):
            leaks += [f"s3://{BUCKET}/{key}: {w}" for w in _credential_fields(json.loads(data), "json")]
    # local files: configs, console output, job logs, training logs, the catalog cache; the Ray sessions
    work = chain["work"]
    logs = [p for p in (work / "logs").rglob("*") if p.is_file()]
    assert any(p.name.startswith("build-") for p in logs) and any(p.name.startswith("refresh-") for p in logs)
    sessions = set()
    for p in logs:
        if p.suffix == ".log":
            sessions |= {Path(m).parent for m in SESSION_LINE.findall(p.read_text(errors="replace"))}
    assert len(sessions) >= 3, sessions  # build, refresh, training (and the evaluation runs no Ray)
    assert all(s.is_dir() and s.parent == Path(chain["ray_tmp"]) / "ray" for s in sessions), sessions
    files = [p for p in work.rglob("*") if p.is_file()]
    files += [p for s in sessions for p in s.rglob("*") if p.is_file()]  # logs/ and the rest of the session
    assert any(p.name == "raylet.out" for p in files)
    for path in files:
        leaks += _leaks(str(path), path.read_bytes())
    assert leaks == []
    # the config each version stores holds no credential field
    for v in (1, 2):
        manifest = storage.read_json(f"{chain['root']}/demo/v{v}/manifest.json")
        assert manifest["config"]["root"] == chain["root"]
        assert _credential_fields(manifest["config"]) == []
