"""Finding Ray Train's worker processes of a training run started from a test (to kill one)."""

import os
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
