"""Observability: rank 0 writes metrics.jsonl and TensorBoard events; the driver draws the bar.

Worker output does not reach the console (Ray's and the workers' logs go to the run's log
file, see `catalog.console`), so the one progress bar is drawn in the driver process by
`MetricsBar`, a thread following the `metrics.jsonl` that rank 0 appends to.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from catalog import console

METRICS_FILE = "metrics.jsonl"


class RunLog:
    """Rank 0's metrics: one JSON line per logged step (flushed), TensorBoard scalars."""

    def __init__(self, log_dir: str) -> None:
        os.makedirs(log_dir, exist_ok=True)
        self.jsonl = open(os.path.join(log_dir, METRICS_FILE), "a", encoding="utf-8")
        self.tb = SummaryWriter(os.path.join(log_dir, "tensorboard"))

    def step(self, step: int, metrics: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
        self.jsonl.flush()
        for key, value in metrics.items():
            if isinstance(value, int | float):  # not the step's source name
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.tb.close()
        self.jsonl.close()


def postfix(metrics: dict[str, Any]) -> dict[str, str]:
    """The progress line: total loss, each objective that ran as `loss x weight @ forward ms`,
    throughput and step time."""
    out = {"loss": f"{metrics['loss/total']:.3f}"}
    for key, value in metrics.items():
        if key.startswith("loss/") and key != "loss/total":
            name = key[len("loss/") :]
            weight, ms = metrics.get(f"weight/{name}"), metrics.get(f"time_ms/{name}")
            out[name] = (
                f"{value:.3f}"
                + (f"x{weight:g}" if weight is not None else "")
                + (f"@{ms:.0f}ms" if ms is not None else "")
            )
    out["samples/s"] = f"{metrics['samples_per_s']:.0f}"
    if "step_ms" in metrics:
        out["ms/step"] = f"{metrics['step_ms']:.0f}"
    return out


HEADLINE = ("zeroshot/shape/top1", "retrieval/i2t_r1", "alignment/localisation_acc")


def eval_postfix(metrics: dict[str, Any]) -> dict[str, str]:
    """The last evaluation's headline metrics for the progress line (`eval/SET/NAME` keys)."""
    out = {}
    for key, value in metrics.items():
        name = key.split("/", 2)[-1] if key.startswith("eval/") else ""
        if name in HEADLINE:
            out[name.split("/")[0]] = f"{value:.2f}"
    return out


class MetricsBar:
    """The driver's progress bar (steps, loss, samples/s), fed by the lines rank 0 appends to
    `{log_dir}/metrics.jsonl` after the bar started (earlier lines belong to earlier attempts)."""

    def __init__(self, log_dir: str, total_steps: int, poll_s: float = 0.5) -> None:
        self.path = os.path.join(log_dir, METRICS_FILE)
        self.total, self.poll_s = total_steps, poll_s
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        self.last: dict[str, Any] | None = None
        self.eval_note: dict[str, str] = {}
        self._stop = threading.Event()
        self._partial = b""
        self.bar = None
        self.thread = threading.Thread(target=self._follow, name="lipforge-metrics-bar", daemon=True)

    def __enter__(self) -> MetricsBar:
        # the whole width: the line names every objective with its loss, weight and time
        self.bar = console.progress(total=self.total, desc="train", unit="step", ncols=None)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.thread.join()
        self._read()
        if self.bar is not None:
            self.bar.close()

    def finish(self, step: int) -> None:
        """Show the run's final step (e.g. an already finished run logs no new line)."""
        self._stop.set()
        self.thread.join()
        self._read()
        if self.bar is not None and step != self.bar.n:
            self.bar.update(step - self.bar.n)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()

    def _read(self) -> None:
        if not os.path.exists(self.path) or self.bar is None:
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the rest
        for line in lines:
            if line.strip():
                self._show(json.loads(line))

    def _show(self, metrics: dict[str, Any]) -> None:
        assert self.bar is not None
        if "loss/total" not in metrics:  # an evaluation's line: shown beside the loss until the next one
            self.eval_note = eval_postfix(metrics)
            return
        if self.last is None:  # the clock starts at the first step, not while Ray starts
            self.bar.reset(total=self.total)
            self.bar.initial = self.bar.n = self.bar.last_print_n = int(metrics["step"]) - 1
        self.last = metrics
        self.bar.set_postfix({**postfix(metrics), **self.eval_note}, refresh=False)
        self.bar.update(int(metrics["step"]) - self.bar.n)  # may go back: a restarted attempt repeats steps
