"""`python -m catalog [--root ROOT]`: list, show, models, samples, rejects, diff, verify, serve, reindex."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from catalog.cli import build_parser, run_parsed

COMMANDS = [
    "catalog.commands.list_versions",
    "catalog.commands.show",
    "catalog.commands.models",
    "catalog.commands.samples",
    "catalog.commands.rejects",
    "catalog.commands.diff",
    "catalog.commands.verify",
    "catalog.commands.serve",
    "catalog.commands.reindex",
]


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m catalog", __doc__, COMMANDS)
    parser.add_argument(
        "--root",
        default=None,
        help="catalog root: a local path or s3://bucket/prefix (default: $LIPFORGE_ROOT or ./data)",
    )
    return run_parsed(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
