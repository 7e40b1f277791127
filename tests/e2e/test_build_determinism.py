"""The same input and config give the same version whatever the parallelism and whatever
fails on the way: one worker over one part, two workers over five parts (and several dedup
and shard buckets), a build whose process group is SIGKILLed during its download and then
re-run (which leaves no Ray process of either behind), and a `ray job submit` build on a three-node cluster (infra/cluster.sh)
whose worker node loses its raylet (SIGKILL) in the middle of the image stage (which checks
each raw shard as the download finishes it, so the download is usually still running) publish the
same tables row for row, byte-identical shards, and manifests equal apart from the creation
time, the code version (a job's uploaded copy has no git commit), the root and the Ray
settings: a node fault loses and repeats no sample."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from support.cluster import BIN, REPO, cluster_state, processes_under, run_script
from support.processes import still_running

from pipelines.sampleweb.corpus import generate
from pipelines.stages import dedup, source, text
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
    with CorpusServer(out, port=port, slow_seconds=20):  # a slow URL always times out; a served one has 5 s
        yield out


def _config(corpus: Path, root: Path, cpus: int) -> dict:
    return {
        "dataset": "det",
        "root": str(root),
        "source": {"urls": str(corpus / "urls.parquet")},
        "download": {"samples_per_shard": 40, "timeout": 5},
        "shard": {"samples_per_shard": 60, "shuffle_rows": 90},  # windows across the five-part run's part edges
        "ray": {"num_cpus": cpus},
    }


def _build(corpus: Path, root: Path, cpus: int) -> dict:
    return run_build(BuildConfig.model_validate(_config(corpus, root, cpus)), log=lambda line: None)


@pytest.fixture(scope="module")
def one(corpus, tmp_path_factory) -> tuple[Path, dict]:
    """The reference: one worker over one part."""
    root = tmp_path_factory.mktemp("one")
    return root, _build(corpus, root, cpus=1)


def _assert_same_version(one: tuple[Path, dict], other: tuple[Path, dict]) -> None:
    (root_a, a), (root_b, b) = one, other
    a, b = _comparable(a), _comparable(b)
    assert a.keys() == b.keys()
    for key in sorted(a):  # the failing field named, not one long JSON diff
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key
    for name in FILES:  # the same rows in the same order (written in as many row groups as parts)
        rows_a = pq.read_table(root_a / "det" / "v1" / name).to_pylist()
        assert rows_a and rows_a == pq.read_table(root_b / "det" / "v1" / name).to_pylist(), name
    for shard in a["shards"]:
        assert (root_a / "det" / shard["path"]).read_bytes() == (root_b / "det" / shard["path"]).read_bytes()


def _comparable(manifest: dict) -> dict:
    # code_version: a submitted job runs from an uploaded copy of the repository, without git's commit
    out = {k: v for k, v in manifest.items() if k not in ("created", "code_version")}
    out["config"] = {k: v for k, v in manifest["config"].items() if k not in ("ray", "root")}
    return out


def test_one_worker_one_part_equals_two_workers_five_parts(corpus, one, tmp_path, monkeypatch):
    assert one[1]["funnel"]["rejected"].get("duplicate_image") and len(one[1]["shards"]) >= 3
    # the driver sizes every round: 5 source parts, several repeat-count and dedup buckets,
    # repeat-count and dedup task groups (the shuffle windows are the config's in both builds)
    monkeypatch.setattr(source, "PART_ROWS", 70)
    monkeypatch.setattr(text, "ROWS_PER_BUCKET", 60)
    monkeypatch.setattr(text, "MAP_ROWS", 140)  # repeat-count tasks over groups of two parts
    monkeypatch.setattr(dedup, "ROWS_PER_BUCKET", 500)
    monkeypatch.setattr(dedup, "MAP_ROWS", 80)  # map tasks over groups of two or three image parts
    _assert_same_version(one, (tmp_path / "five", _build(corpus, tmp_path / "five", cpus=2)))


def test_a_build_killed_during_its_download_and_re_run_equals_the_one_worker_build(corpus, one, tmp_path):
    cfg_path = tmp_path / "build.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(corpus, tmp_path / "killed", cpus=2)))
    cmd = [sys.executable, "-m", "pipelines", "build", str(cfg_path)]
    raw = tmp_path / "killed" / "det" / ".work" / "v1" / "download" / "raw"
    # Ray's processes inherit the driver's environment: the marker finds every one of them
    env = {name: dict(os.environ, LIPFORGE_TEST_RUN=f"{name}-{tmp_path.name}") for name in ("killed", "rerun")}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env["killed"], start_new_session=True, **quiet)
    deadline = time.time() + 300
    while not (raw.exists() and any(p.name.endswith("_stats.json") for p in raw.iterdir())):
        assert proc.poll() is None, "the build finished before it could be killed"
        assert time.time() < deadline, "the build never reached its download"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "det" / "v1" / "manifest.json").exists()
    subprocess.run(cmd, cwd=REPO, env=env["rerun"], check=True, timeout=600, **quiet)
    for marker in env.values():  # neither the killed build nor its re-run left a Ray process
        assert still_running("LIPFORGE_TEST_RUN", marker["LIPFORGE_TEST_RUN"]) == []
    manifest = json.loads((tmp_path / "killed" / "det" / "v1" / "manifest.json").read_text())
    _assert_same_version(one, (tmp_path / "killed", manifest))


def _raylet_of(state: str, node: str) -> int:
    raylets = [p for p, cmd in processes_under(f"{state}/ray/{node}/").items() if "/raylet " in f"{cmd} "]
    assert len(raylets) == 1, raylets
    return raylets[0]


def test_a_build_on_three_nodes_that_loses_a_node_equals_the_one_worker_build(corpus, one, tmp_path):
    with cluster_state() as env:
        up = run_script(env, "up", timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        state, env = env["LIPFORGE_CLUSTER_DIR"], {**env, "RAY_AUTH_MODE": "token"}
        cfg = _config(corpus, tmp_path / "cluster", cpus=1)
        del cfg["ray"]  # the cluster's CPUs: one per node
        (tmp_path / "build.yaml").write_text(yaml.safe_dump(cfg))
        dashboard = f"http://127.0.0.1:{env['LIPFORGE_CLUSTER_DASHBOARD_PORT']}"
        job = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO)]
        job += ["--", "python", "-m", "pipelines", "build", str(tmp_path / "build.yaml")]
        proc = subprocess.Popen(job, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        completions = tmp_path / "cluster" / "det" / ".work" / "v1" / "completions"
        try:
            deadline = time.time() + 400
            while not (completions.is_dir() and any(p.name.startswith("image-") for p in completions.iterdir())):
                assert proc.poll() is None, proc.communicate()[0][-3000:]
                assert time.time() < deadline, "the build never reached its image stage"
                time.sleep(0.2)
            # the raw shards to come: img2dataset cuts each part's survivors into shards of 40
            inputs = [json.loads(p.read_text())["rows"] for p in completions.glob("download-input-*")]
            shards = sum(-(-rows // 40) for rows in inputs)
            decided = sum(p.name.startswith("image-") for p in completions.iterdir())
            os.kill(_raylet_of(state, "worker1"), signal.SIGKILL)  # the node's actors and tasks die with it
            out, _ = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out[-3000:]
        assert "succeeded" in out
        assert decided < shards  # killed in the middle of the image stage (which runs beside the download)
        assert not completions.exists()  # the finished build removed its work folder
    _assert_same_version(
        one, (tmp_path / "cluster", json.loads((tmp_path / "cluster" / "det" / "v1" / "manifest.json").read_text()))
    )
