"""The shared `python -m <package>` front end.

Each command lives in its own module exposing `add_parser(subparsers)` (adds one
sub-command) and `main(args) -> int | None`. A package's `__main__` lists its command
modules; this module builds the argparse tree and turns config errors into one clear
line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from catalog.config import ConfigError


def build_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        module = importlib.import_module(name)
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for added in set(subparsers.choices) - before:
            subparsers.choices[added].set_defaults(_main=module.main)
    return parser


def run(prog: str, description: str, modules: Sequence[str], argv: Sequence[str] | None = None) -> int:
    args = build_parser(prog, description, modules).parse_args(argv)
    try:
        code = args._main(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)
