"""`ray_session` on a machine where `ray start` left a cluster running: a job without an address
starts a Ray of its own with the CPUs it asked for, instead of joining that cluster (a bare
`ray.init()` finds it through /tmp/ray and refuses `num_cpus`), and leaves it running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
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


def test_a_local_ray_spills_into_a_folder_of_its_own_removed_at_the_end(tmp_path, monkeypatch):
    """More than the object store holds is spilled, into the job's own folder; the folder is gone
    afterwards (spilled blocks never outlive the job in a shared /tmp/ray folder)."""
    import numpy as np

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the job's spill folder is made
    with ray_session(RayConfig(num_cpus=1, object_store_mb=80)):
        (spill,) = tmp_path.glob("lipforge-spill-*")
        blocks = [np.full(30 << 20, i, dtype=np.uint8) for i in range(4)]  # 120 MiB into 80 MiB
        refs = [ray.put(b) for b in blocks]
        deadline = time.time() + 30
        while not any(p.is_file() for p in spill.rglob("*")):
            assert time.time() < deadline, "nothing was spilled"
            time.sleep(0.2)
        assert all((ray.get(r) == b).all() for r, b in zip(refs, blocks))  # spilled blocks come back
        del refs
    assert not spill.exists()
