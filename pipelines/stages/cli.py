"""CLI: `build CONFIG.yaml [--set k=v ...]`, and the debugging stages `filter` and `download`.

Listed in pipelines/__main__.py; errors the user caused print as one line (catalog.cli).
"""

from __future__ import annotations

import argparse
from typing import Any

from catalog.cli import add_overrides
from catalog.config import load_config
from pipelines.stages.config import BuildConfig
from pipelines.stages.pipeline import run_build

_HELP = {
    "build": "build the next dataset version from a URL list (resumes an unfinished one)",
    "filter": "run only source + text filters (debugging; nothing is published)",
    "download": "run source + text filters + download (debugging; nothing is published)",
}


def add_parser(subparsers: Any) -> None:
    for name, text in _HELP.items():
        p = subparsers.add_parser(name, help=text, description=text)
        p.add_argument("config", help="build config YAML (see configs/demo.yaml, docs/pipeline.md)")
        add_overrides(p, "shard.samples_per_shard=500")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(BuildConfig, args.config, args.overrides)
    run_build(cfg, stop_after=None if args.command == "build" else args.command)
    return 0
