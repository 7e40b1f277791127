"""Running `infra/cluster.sh` from a test: its own state dir and ports, and finding the
processes of that cluster (by the state dir their command lines name, and their descendants)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipelines.webserver import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "infra" / "cluster.sh"
BIN = Path(sys.executable).parent


def run_script(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def processes_under(path: str) -> dict[int, str]:
    """pid -> command line of every process whose command line names `path`."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not running(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmdline:
            found[int(proc.name)] = cmdline
    return found


def running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(roots: set[int]) -> set[int]:
    """`roots` and every process under them (the workers and agents, whose titles name no path)."""
    parent = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                # the field after the parenthesised command name is the state, then the parent pid
                parent[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, todo = set(roots), list(roots)
    while todo:
        pid = todo.pop()
        children = {child for child, ppid in parent.items() if ppid == pid} - found
        found |= children
        todo.extend(children)
    return found


@contextlib.contextmanager
def cluster_state(head_cpus: int = 1) -> Iterator[dict[str, str]]:
    """The environment for `infra/cluster.sh` with its own state dir and free ports (so it
    never meets a cluster already running on 6379/8265), 1 CPU per worker node; `down` at the end."""
    # A short path: Ray's unix sockets live under it and must stay under 108 characters.
    state = tempfile.mkdtemp(prefix="lfc-", dir="/tmp")
    env = {
        **os.environ,
        "LIPFORGE_CLUSTER_DIR": state,
        "LIPFORGE_CLUSTER_PORT": str(free_port()),
        "LIPFORGE_CLUSTER_DASHBOARD_PORT": str(free_port()),
        "LIPFORGE_CLUSTER_HEAD_CPUS": str(head_cpus),
        "LIPFORGE_CLUSTER_WORKER_CPUS": "1",
        "LIPFORGE_CLUSTER_OBJECT_STORE_MB": "200",
        "RAY_USAGE_STATS_ENABLED": "0",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    env.pop("RAY_ADDRESS", None)
    try:
        yield env
    finally:
        run_script(env, "down", timeout=120)
        shutil.rmtree(state, ignore_errors=True)
