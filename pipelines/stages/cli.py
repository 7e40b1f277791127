"""CLI: `build CONFIG.yaml [--set k=v ...]`, and the debugging stages `filter` and `download`.

CONFIG may also be a published build version, `NAME@VERSION` (looked up under `--root`):
its stored config is built again with the `--set` changes (what `whatif` prints).

Listed in pipelines/__main__.py; errors the user caused print as one line (catalog.cli).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from catalog import versions
from catalog.cli import add_overrides
from catalog.config import apply_overrides, load_config, validate
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
        p.add_argument(
            "config", help="build config YAML (see configs/demo.yaml, docs/pipeline.md), or NAME@VERSION to rebuild"
        )
        p.add_argument(
            "--root",
            default=None,
            help="datasets root (default: the config's; for NAME@VERSION $LIPFORGE_ROOT or ./data)",
        )
        add_overrides(p, "shard.samples_per_shard=500")


def build_config(config: str, root: str | None, overrides: list[str]) -> BuildConfig:
    """The config of a build: a YAML file, or the stored config of version NAME@VERSION; `root` forced when given."""
    if "@" in config and not Path(config).exists():
        root = root or os.environ.get("LIPFORGE_ROOT") or "./data"
        manifest = versions.load_manifest(root, config)
        source = f"{manifest['dataset']}@{manifest['version']} manifest config"
        cfg = validate(BuildConfig, apply_overrides(manifest["config"], overrides), source)
    else:
        cfg = load_config(BuildConfig, config, overrides)
    return cfg.model_copy(update={"root": root}) if root else cfg


def main(args: argparse.Namespace) -> int:
    cfg = build_config(args.config, args.root, args.overrides)
    run_build(cfg, stop_after=None if args.command == "build" else args.command)
    return 0
