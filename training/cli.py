"""`python -m training train CONFIG.yaml [--set key=value ...]`.

The console shows lipforge's own lines: one progress bar (steps, loss, samples/s), the run
summary and where the full log is (Ray's and Ray Train's output, written to
`{run.log_dir}/{run.name}/ray.log`; `python -m training --verbose train ...` shows it live).
A mistake in the config or the data (unknown objective or option, missing dataset version,
members the objectives read that the version lacks) is one `error: ...` line.
"""

from __future__ import annotations

import argparse
import json

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
    print("summary " + json.dumps(summary, indent=2, sort_keys=True))
    first, last = summary.get("first_loss"), summary.get("last_loss")
    if first is not None and last is not None:
        print(f"loss: start {first:.4f} -> end {last:.4f}")
    if summary.get("log"):
        print(f"full log: {summary['log']}")
    return 0
