"""The build as a Ray job: `ray start --head` (token auth, Ray 2.60) + `ray job submit`; a
build stopped with `ray job stop` publishes nothing, and submitting it again resumes and completes.

A real local cluster (`infra/cluster.sh`, head node only) and the real job CLI; the working directory is uploaded, so the job
runs from a copy of the repository without its git-ignored cache (assets are prepared on
first use there). Paths in the config are absolute, as they must be for a cluster job.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from support.cluster import cluster_state, run_script

from catalog.reasons import KEEP
from catalog.versions import version_numbers
from pipelines.sampleweb.corpus import generate
from pipelines.webserver import CorpusServer, free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def cluster():
    """A one-node cluster of `infra/cluster.sh` (head only, 2 CPUs) in a state dir of its own;
    `down` stops its processes and no others (`ray stop --force` would stop every Ray here)."""
    with cluster_state(head_cpus=2) as env:
        up = run_script(env, "up", "--workers", "0", timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        yield {**env, "RAY_AUTH_MODE": "token"}, f"http://127.0.0.1:{env['LIPFORGE_CLUSTER_DASHBOARD_PORT']}"


def _ray(env, *args, timeout=480):
    """A `ray` CLI command; a job submitted before the head's job agent is up is sent again."""
    deadline = time.time() + 90
    while True:
        done = subprocess.run(
            [str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
        if "No available agent to submit job" not in done.stdout + done.stderr or time.time() > deadline:
            return done
        time.sleep(2)


def test_a_stopped_build_job_publishes_nothing_and_its_resubmission_completes(cluster, tmp_path):
    env, dashboard = cluster
    port = free_port()
    corpus = tmp_path / "corpus"
    generate(corpus, n=200, seed=3, base_url=f"http://127.0.0.1:{port}")
    config = tmp_path / "build.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": "job",
                "root": str(tmp_path / "data"),
                "source": {"urls": str(corpus / "urls.parquet")},
                "download": {"timeout": 2, "samples_per_shard": 50},
            }
        )
    )
    submit = ["job", "submit", "--address", dashboard, "--working-dir", str(REPO)]
    build = ["--", "python", "-m", "pipelines", "build", str(config)]
    raw = tmp_path / "data" / "job" / ".work" / "v1" / "download" / "raw"
    with CorpusServer(corpus, port=port, slow_seconds=4):
        started = _ray(env, *submit, "--submission-id", "build-1", "--no-wait", *build, timeout=120)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        deadline = time.time() + 400  # the job's copy prepares its assets first
        while not (raw.is_dir() and any(p.name.endswith("_stats.json") for p in raw.iterdir())):
            status = _ray(env, "job", "status", "--address", dashboard, "build-1", timeout=60).stdout
            assert "RUNNING" in status or "PENDING" in status, status[-2000:]
            assert time.time() < deadline, "the build never reached its download stage"
            time.sleep(1)
        stopped = _ray(env, "job", "stop", "--address", dashboard, "build-1", timeout=120)
        assert stopped.returncode == 0 and "stopped" in (stopped.stdout + stopped.stderr).lower()
        assert version_numbers(str(tmp_path / "data"), "job") == []  # nothing half published
        assert not (tmp_path / "data" / "job" / "v1" / "manifest.json").exists()
        job = _ray(env, *submit, "--submission-id", "build-2", *build)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in job.stdout + job.stderr
    assert "resuming unfinished version v1" in job.stdout + job.stderr
    truth = pq.read_table(corpus / "truth.parquet").to_pylist()
    kept = pq.read_table(tmp_path / "data" / "job" / "v1" / "kept.parquet")
    assert kept.num_rows == sum(t["fate"] == KEEP for t in truth)
    assert version_numbers(str(tmp_path / "data"), "job") == [1]
