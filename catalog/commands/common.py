"""Options every catalog command shares (--root, --json) and opening the catalog."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from catalog.store import Catalog

DEFAULT_ROOT = "data"


def add_common(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """--root (also accepted before the command) and --json."""
    parser.add_argument(
        "--root",
        default=argparse.SUPPRESS,
        help="catalog root: a local path or s3://bucket/prefix (default: $LIPFORGE_ROOT or ./data)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")


def root_of(args: argparse.Namespace) -> str:
    return getattr(args, "root", None) or os.environ.get("LIPFORGE_ROOT") or DEFAULT_ROOT


def open_catalog(args: argparse.Namespace) -> Catalog:
    return Catalog(root_of(args))


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
