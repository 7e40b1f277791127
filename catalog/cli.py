"""The shared `python -m <package>` front end.

Each command lives in its own module exposing `add_parser(subparsers)` (adds one
sub-command) and `main(args) -> int | None`. A package's `__main__` lists its command
modules; this module builds the argparse tree, adds `--verbose` (Ray's and the libraries'
logs live on the console instead of in the job's log file, see `catalog.console`), and
turns an error the user caused (`catalog.errors.UserError`) into one `error: ...` line and
exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from catalog import console
from catalog.errors import UserError


def build_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Ray's and the libraries' logs live instead of writing them to the job's log file",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        module = importlib.import_module(name)
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for added in set(subparsers.choices) - before:
            subparsers.choices[added].set_defaults(_main=module.main)
    return parser


def add_overrides(parser: argparse.ArgumentParser, example: str) -> None:
    """The `--set KEY=VALUE` option every config-reading command takes (into `args.overrides`)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. --set {example} (repeatable)",
    )


def run_parsed(args: argparse.Namespace) -> int:
    """Run the chosen command; a UserError becomes one line on stderr and exit status 2."""
    console.set_verbose(getattr(args, "verbose", False))
    try:
        code = args._main(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def run(prog: str, description: str, modules: Sequence[str], argv: Sequence[str] | None = None) -> int:
    return run_parsed(build_parser(prog, description, modules).parse_args(argv))
