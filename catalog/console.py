"""What a person sees: lipforge's own lines on the console, everything else in a log file.

Ray, Ray Data, Ray Train, img2dataset and the native Ray core write INFO/WARNING lines and
internal tracebacks to the process's stderr (Python logging and C++ alike). While a job
runs inside `captured(log_path)`, file descriptor 2 points at `log_path` and Python's
logging writes there too, so the console shows only what lipforge prints to stdout:
progress bars (`progress()`), stage lines and summaries. `--verbose` (`set_verbose(True)`)
turns capturing off and lets every line through live.

On exit the original stderr is restored, so an error message printed afterwards by the
CLI runner reaches the person, and names the log for the details.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

_state: dict[str, Any] = {"verbose": False, "log": None}


def set_verbose(on: bool) -> None:
    _state["verbose"] = bool(on)


def verbose() -> bool:
    return bool(_state["verbose"])


def current_log() -> str | None:
    """The log file of the job running now (None outside `captured` or when verbose)."""
    return _state["log"]


def progress(**kwargs: Any) -> tqdm:
    """A lipforge progress bar: on stdout (stderr may be captured), one line, ASCII."""
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ascii", True)
    kwargs.setdefault("dynamic_ncols", False)
    kwargs.setdefault("ncols", 100)
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(**kwargs)


@contextlib.contextmanager
def captured(log_path: str) -> Iterator[str | None]:
    """Send stderr (fd 2) and Python logging to `log_path` for the block; yields the path.

    Nested calls and verbose mode leave the current destination as it is (yield None when
    nothing is captured).
    """
    if verbose() or _state["log"] is not None:
        yield _state["log"]
        return
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(log_file.fileno(), 2)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    _state["log"] = os.path.abspath(log_path)
    try:
        yield _state["log"]
    finally:
        _state["log"] = None
        root.removeHandler(handler)
        handler.close()
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        log_file.close()


def job_log_path(root: str, dataset: str, job: str) -> str:
    """Where a job's full log goes: `{root}/{dataset}/logs/{job}-{time}.log` for a local root,
    `./logs/{dataset}/{job}-{time}.log` when the root is remote (s3://)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if "://" in str(root) and not str(root).startswith("file://"):
        base = os.path.join("logs", dataset)
    else:
        base = os.path.join(str(root).removeprefix("file://"), dataset, "logs")
    return os.path.abspath(os.path.join(base, f"{job}-{stamp}.log"))


@contextlib.contextmanager
def stdout_to_log() -> Iterator[Any]:
    """While a library that prints its own progress runs (img2dataset: its driver and its
    logger subprocess write to file descriptor 1), point fd 1 at the job's log too; yields
    the console stream for lipforge's own bar. Outside `captured` or with --verbose: stdout."""
    if verbose() or _state["log"] is None:
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    console_stream = os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    os.dup2(2, 1)  # fd 2 already goes to the log
    try:
        yield console_stream
    finally:
        sys.stdout.flush()
        console_stream.flush()
        os.dup2(saved, 1)
        console_stream.close()
        os.close(saved)
