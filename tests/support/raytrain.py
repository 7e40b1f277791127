"""Ray Train runs started from a test: the training CLI in a subprocess, its logged metrics,
finding its worker processes (to kill one), comparing saved states bit for bit, and checking
that a run's console carries only lipforge's lines."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def train(workdir, config, *overrides, wait=True, env=None):
    """`python -m training train CONFIG --set ...` in `workdir`, in its own session (so a test can
    kill its process group). `wait`: run it to the end, assert success and return its output;
    else return the `Popen`."""
    cmd = [sys.executable, "-m", "training", "train", config] + [a for o in overrides for a in ("--set", o)]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env or ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return out


def training_cli(workdir, *args, timeout=600) -> str:
    """`python -m training ARGS...` in `workdir` (e.g. `tokenizer build`, `eval`): assert it
    succeeds and return its standard output."""
    cmd = [sys.executable, "-m", "training", *map(str, args)]
    out = subprocess.run(cmd, cwd=workdir, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def metrics(workdir, name):
    """Rank 0's metrics.jsonl rows of run `name` (logs under `workdir/logs`), in order."""
    path = Path(workdir) / "logs" / name / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def flat_state(state) -> torch.Tensor:
    """Every tensor of a nested state dict (floats and integers), in key order, as one float64
    vector: two states are bit-identical when these are `torch.equal`."""
    if torch.is_tensor(state):
        return state.double().flatten()
    items = sorted(state.items()) if isinstance(state, dict) else enumerate(state) if isinstance(state, list) else ()
    return torch.cat([torch.zeros(0, dtype=torch.float64), *(flat_state(v) for _, v in items)])


def ray_train_worker_pids(root_pid: int) -> list[int]:
    """Descendants of `root_pid` whose command line names Ray Train's worker actor: the actors
    themselves, not their dataloader workers (forked children that inherit the command line)."""
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
            if "RayTrainWorker" in cmd:
                found.append(pid)
            else:
                todo.append(pid)
    return found


def registered(checkpoint: Path) -> bool:
    """Ray Train has registered `checkpoint` (its manager's snapshot lists it), so a restart
    resumes from it. The folder alone appears before the asynchronous report is processed."""
    snapshot = checkpoint.parent / "checkpoint_manager_snapshot.json"
    return checkpoint.is_dir() and snapshot.is_file() and checkpoint.name in snapshot.read_text()


def kill_a_worker_when(proc, ready, what: str, timeout_s: float = 500, kill=None) -> str:
    """Wait until `ready()` holds while the run `proc` (a CLI subprocess in its own session)
    goes on, SIGKILL one of its Ray Train workers (or call `kill(worker pid)`: e.g. to kill
    the worker's node), and return the run's output once it ends."""
    try:
        deadline = time.time() + timeout_s
        while not ready():
            assert proc.poll() is None and time.time() < deadline, f"run ended or stalled before {what}"
            time.sleep(0.2)
        victims = ray_train_worker_pids(proc.pid) or ray_train_worker_pids(1)
        assert victims, "no RayTrainWorker process found"
        (kill or (lambda pid: os.kill(pid, signal.SIGKILL)))(victims[0])
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    return out


OWN_LINE = re.compile(
    r"^(train: +\d+%\|.*|run \S+: step \d+, .*|loss: start .*|  \w+: [\d.]+ -> [\d.]+|checkpoint: .*|summary: .*|full log: .*"
    r"|evaluation at step \d+|eval set \S+|every metric: .*|  \S+ +[\d.]+( +\(chance .*\))?|  note: .*|  word-patch drawing: .*)$"
)


def assert_own_lines_only(out, workdir, name):
    """Every console line is lipforge's: bar updates, the summary JSON, the loss and log lines."""
    lines = [line for line in re.split(r"[\r\n]", out) if line.strip()]
    foreign = [line for line in lines if not OWN_LINE.match(line)]
    assert not foreign, foreign[:10]
    log = workdir / "logs" / name / "ray.log"
    assert f"full log: {log}" in out and log.is_file()
