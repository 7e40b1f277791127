"""Finding Ray Train's worker processes of a training run started from a test (to kill one)."""

import os
import signal
import time
from pathlib import Path


def ray_train_worker_pids(root_pid: int) -> list[int]:
    """Descendants of `root_pid` whose command line names Ray Train's worker actor."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append((int(entry), cmd))
    found, todo = [], [root_pid]
    while todo:
        for pid, cmd in children.get(todo.pop(), []):
            todo.append(pid)
            if "RayTrainWorker" in cmd:
                found.append(pid)
    return found


def registered(checkpoint: Path) -> bool:
    """Ray Train has registered `checkpoint` (its manager's snapshot lists it), so a restart
    resumes from it. The folder alone appears before the asynchronous report is processed."""
    snapshot = checkpoint.parent / "checkpoint_manager_snapshot.json"
    return checkpoint.is_dir() and snapshot.is_file() and checkpoint.name in snapshot.read_text()


def kill_a_worker_when(proc, ready, what: str, timeout_s: float = 500) -> str:
    """Wait until `ready()` holds while the run `proc` (a CLI subprocess in its own session)
    goes on, SIGKILL one of its Ray Train workers, and return the run's output once it ends."""
    try:
        deadline = time.time() + timeout_s
        while not ready():
            assert proc.poll() is None and time.time() < deadline, f"run ended or stalled before {what}"
            time.sleep(0.2)
        victims = ray_train_worker_pids(proc.pid)
        assert victims, "no RayTrainWorker process found"
        os.kill(victims[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    return out
