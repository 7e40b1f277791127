"""infra/cluster.sh: a real three-node Ray cluster on this machine, a real `ray job submit`, a clean stop.

The slow test starts the cluster on free ports in its own state dir (so it never meets a
cluster already running on 6379/8265), checks that `up` is idempotent, that `status` (`ray
status`) shows the three nodes' resources, that a submitted job sees three nodes with their
custom resources and can pin a task to each, and that `down` leaves no process of that
cluster running. The fast tests cover the script's answers to bad input and to
`down`/`status` when nothing runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from support.cluster import BIN, REPO, cluster_state, descendants, processes_under, run_script, running

RESOURCES = ("head", "worker1", "worker2")  # the custom resource of each node

# The job: the nodes and their resources as the job's driver sees them, and one task pinned
# to each node by its custom resource (num_cpus=0, so the 1-CPU head can take one too).
JOB = """
import json, ray
ray.init()
@ray.remote(num_cpus=0)
def where():
    return ray.get_runtime_context().get_node_id()
names = ["head", "worker1", "worker2"]
placed = ray.get([where.options(resources={n: 1}).remote() for n in names])
nodes = [{"id": n["NodeID"], "resources": n["Resources"]} for n in ray.nodes() if n["Alive"]]
print("LIPFORGE-JOB " + json.dumps({"nodes": nodes, "placed": dict(zip(names, placed))}))
"""


@pytest.fixture
def cluster_env():
    with cluster_state() as env:
        yield env


@pytest.mark.slow
def test_cluster_up_runs_a_submitted_job_on_three_nodes_and_down_stops_every_process(cluster_env):
    env, state = cluster_env, cluster_env["LIPFORGE_CLUSTER_DIR"]
    dashboard = f"http://127.0.0.1:{env['LIPFORGE_CLUSTER_DASHBOARD_PORT']}"

    up = run_script(env, "up", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "lipforge cluster: up (3 nodes" in up.stdout
    assert dashboard in up.stdout and "RAY_AUTH_MODE=token" in up.stdout
    assert f"{state}/logs/" in up.stdout
    assert "Ray runtime started" not in up.stdout + up.stderr  # Ray's output is in the logs, not on the console
    assert "Ray runtime started" in (Path(state) / "logs" / "head.log").read_text()

    again = run_script(env, "up")
    assert again.returncode == 0 and "already up" in again.stdout, again.stdout + again.stderr
    status = run_script(env, "status")  # `ray status` through the script: the three nodes' resources
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"0(\.0)?/3(\.0)? CPU", status.stdout) and all(f"/1.0 {r}" in status.stdout for r in RESOURCES)

    job = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--"]
        + ["python", "-c", JOB],
        env={**env, "RAY_AUTH_MODE": "token"},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    line = next(x for x in job.stdout.splitlines() if x.startswith("LIPFORGE-JOB "))
    seen = json.loads(line.removeprefix("LIPFORGE-JOB "))
    nodes = {n["id"]: n["resources"] for n in seen["nodes"]}
    assert len(nodes) == 3
    by_name = {name: node for name in RESOURCES for node, res in nodes.items() if name in res}
    assert len(set(by_name.values())) == 3, nodes  # one custom resource per node
    assert all(res["CPU"] == 1 for res in nodes.values()), nodes
    assert seen["placed"] == by_name  # each pinned task ran on the node holding its resource

    ours = processes_under(f"{state}/ray/")
    assert any("raylet" in cmd for cmd in ours.values()) and any("gcs_server" in cmd for cmd in ours.values())
    nodes_started = {int(p.read_text()) for p in (Path(state) / "pids").glob("*.pid")}
    assert len(nodes_started) == 3
    tree = descendants(nodes_started)
    assert set(ours) <= tree  # every process of the cluster runs under its three `ray start` processes

    down = run_script(env, "down", timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
    assert processes_under(f"{state}/ray/") == {}
    assert not [pid for pid in tree | set(ours) if running(pid)]
    status = run_script(env, "status")
    assert status.returncode == 1 and "not running" in status.stdout


def test_down_and_status_when_nothing_runs(tmp_path):
    env = {**os.environ, "LIPFORGE_CLUSTER_DIR": str(tmp_path / "state")}
    down = run_script(env, "down")
    assert down.returncode == 0 and "not running" in down.stdout
    status = run_script(env, "status")
    assert status.returncode == 1 and "not running" in status.stdout


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["restart"], {}, "unknown command 'restart'"),
        (["up", "--workers", "two"], {}, "--workers must be an integer from 0 to 64, got 'two'"),
        (["up", "--head-cpus"], {}, "--head-cpus needs a value"),
        (["up", "--gpus", "1"], {}, "up: unknown option '--gpus'"),
        (
            ["up"],
            {"LIPFORGE_CLUSTER_PORT": "63x79"},
            "LIPFORGE_CLUSTER_PORT must be an integer from 1 to 65535, got '63x79'",
        ),
        (["down", "now"], {}, "down takes no arguments"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, args, extra_env, message):
    env = {**os.environ, "LIPFORGE_CLUSTER_DIR": str(tmp_path / "state"), **extra_env}
    result = run_script(env, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "state" / "pids").exists()  # nothing was started


def test_up_refuses_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "LIPFORGE_CLUSTER_DIR": str(tmp_path / "state"), "LIPFORGE_CLUSTER_PORT": str(port)}
        result = run_script(env, "up")
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
