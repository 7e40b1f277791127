"""Processes a test started, found by an environment marker: Ray's head, raylet and worker
processes inherit the environment of the driver that started them, wherever they re-parent
or whatever session they move to, so a marker set on the driver finds all of them."""

from __future__ import annotations

import os
import time


def marked(name: str, value: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment has `name=value`."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in env and state != "Z":
            found.append((int(entry), cmd))
    return found


def still_running(name: str, value: str, grace_s: float = 20.0) -> list[tuple[int, str]]:
    """The marked processes left once `grace_s` has passed (exiting ones get that long)."""
    deadline = time.time() + grace_s
    while (left := marked(name, value)) and time.time() < deadline:
        time.sleep(0.5)
    return left
