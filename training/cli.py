"""`python -m training train CONFIG.yaml [--set key=value ...]`."""

from __future__ import annotations

import argparse
import json

from catalog.config import load_config
from training.config import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a dual encoder with Ray Train (resumes an existing run)")
    p.add_argument("config", help="YAML config, e.g. configs/train/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set steps=200 (repeatable)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(TrainConfig, args.config, args.overrides)
    from training.train import launch  # Ray and torch load only once the config is valid

    summary = launch(cfg)
    print("summary " + json.dumps(summary, indent=2, sort_keys=True))
    first, last = summary.get("first_loss"), summary.get("last_loss")
    if first is not None and last is not None:
        print(f"loss: start {first:.4f} -> end {last:.4f}")
    return 0
