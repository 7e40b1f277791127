"""The build as a Ray job: `ray start --head` (token auth, Ray 2.60) + `ray job submit`.

A real local cluster and the real job CLI; the working directory is uploaded, so the job
runs from a copy of the repository without its git-ignored cache (assets are prepared on
first use there). Paths in the config are absolute, as they must be for a cluster job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from catalog.reasons import KEEP
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


def test_build_runs_as_a_submitted_ray_job(cluster, tmp_path):
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
                "download": {"timeout": 2},
            }
        )
    )
    with CorpusServer(corpus, port=port, slow_seconds=4):
        job = subprocess.run(
            [
                str(BIN / "ray"),
                "job",
                "submit",
                "--address",
                dashboard,
                "--working-dir",
                str(REPO),
                "--",
                "python",
                "-m",
                "pipelines",
                "build",
                str(config),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
            cwd=REPO,
        )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in job.stdout + job.stderr
    truth = pq.read_table(corpus / "truth.parquet").to_pylist()
    kept = pq.read_table(tmp_path / "data" / "job" / "v1" / "kept.parquet")
    assert kept.num_rows == sum(t["fate"] == KEEP for t in truth)
    assert (tmp_path / "data" / "job" / "v1" / "manifest.json").is_file()
