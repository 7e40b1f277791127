"""`python -m training train CONFIG.yaml [--set key=value ...]`.

The console shows lipforge's own lines: one progress bar (steps, loss, samples/s), a short
run summary (losses from start to end, the evaluation next to chance; the whole summary is
`{run.log_dir}/{run.name}/summary.json`) and where the full log is (Ray's and Ray Train's output, written to
`{run.log_dir}/{run.name}/ray.log`; `python -m training --verbose train ...` shows it live).
A mistake in the config or the data (unknown objective or option, missing dataset version,
members the objectives read that the version lacks) is one `error: ...` line.
"""

from __future__ import annotations

import argparse
import os

from catalog.cli import add_overrides
from catalog.config import load_config
from training.config import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a dual encoder with Ray Train (resumes an existing run)")
    p.add_argument("config", help="YAML config, e.g. configs/train/demo.yaml")
    add_overrides(p, "steps=200")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(TrainConfig, args.config, args.overrides)  # objectives and their options checked here
    from training.train import launch  # Ray loads only once the config is valid

    summary = launch(cfg)
    for line in summary_lines(summary):
        print(line)
    return 0


def summary_lines(summary: dict) -> list[str]:
    """What a person reads after a run: steps and speed, each loss from start to end, the
    evaluation next to chance, and where the checkpoint, the full summary and the log are."""
    lines = [
        f"run {summary.get('run')}: step {summary.get('step')}, {summary.get('steps_this_attempt', 0)} this attempt "
        f"in {summary.get('wall_s_this_attempt', 0.0):.0f} s ({summary.get('samples_per_s', 0.0):.0f} samples/s)"
    ]
    first, last = summary.get("first_loss"), summary.get("last_loss")
    if first is not None and last is not None:
        lines.append(f"loss: start {first:.4f} -> end {last:.4f}")
        firsts, lasts = summary.get("first_losses", {}), summary.get("last_losses", {})
        for name in sorted(lasts):
            lines.append(f"  {name}: {firsts.get(name, float('nan')):.4f} -> {lasts[name]:.4f}")
    if summary.get("eval"):
        from training.eval.runner import report_summary

        lines.append(report_summary(summary["eval"]))
        if summary.get("root"):
            lines.append(f"every metric: python -m catalog --root {summary['root']} show {summary.get('run')}")
    if summary.get("checkpoint"):
        lines.append(f"checkpoint: {summary['checkpoint']}")
    if summary.get("log_dir"):
        lines.append(f"summary: {os.path.join(summary['log_dir'], 'summary.json')}")
    if summary.get("log"):
        lines.append(f"full log: {summary['log']}")
    return lines
