"""The build as a Ray job: `ray start --head` (token auth, Ray 2.60) + `ray job submit`; a
build stopped with `ray job stop` publishes nothing, and submitting it again resumes and completes.

A real local cluster and the real job CLI; the working directory is uploaded, so the job
runs from a copy of the repository without its git-ignored cache (assets are prepared on
first use there). Paths in the config are absolute, as they must be for a cluster job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from catalog.reasons import KEEP
from catalog.versions import version_numbers
from pipelines.sampleweb.corpus import generate
from pipelines.webserver import CorpusServer, free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def cluster(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the job's `python` is this venv's
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    env.pop("RAY_ADDRESS", None)
    gcs, dashboard = free_port(), free_port()
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={gcs}",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            "--num-cpus=2",
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    try:
        yield env, f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


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
