"""`ray_session` on a machine where `ray start` left a cluster running: a job without an address
starts a Ray of its own with the CPUs it asked for, instead of joining that cluster (a bare
`ray.init()` finds it through /tmp/ray and refuses `num_cpus`), and leaves it running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from ray._common.utils import get_ray_address_file

from catalog.raysession import RayConfig, ray_session
from pipelines.webserver import free_port

pytestmark = pytest.mark.slow  # a real `ray start` and a real local Ray

BIN = Path(sys.executable).parent


@pytest.fixture
def started_cluster(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    log = (tmp_path / "ray-start.log").open("w")
    port = free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=1"]
    cmd += ["--include-dashboard=false", "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while "Ray runtime started" not in (tmp_path / "ray-start.log").read_text():
        assert proc.poll() is None and time.time() < deadline, (tmp_path / "ray-start.log").read_text()[-2000:]
        time.sleep(0.5)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
        # `ray start` recorded this cluster under /tmp/ray and stopping it does not forget it (only
        # `ray stop` does): a later bare `ray.init()` in the suite would try to join a dead cluster
        address_file = Path(get_ray_address_file(None))
        if address_file.exists() and address_file.read_text().strip().endswith(f":{port}"):
            address_file.unlink()


def test_a_job_without_an_address_starts_its_own_ray_beside_a_started_cluster(started_cluster, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with ray_session(RayConfig(num_cpus=2)) as cpus:
        assert cpus == 2  # its own Ray: the started cluster has 1 CPU
        assert ray.get(ray.remote(lambda: 21 * 2).remote()) == 42
    assert not ray.is_initialized()
    assert started_cluster.poll() is None  # the started cluster still runs
