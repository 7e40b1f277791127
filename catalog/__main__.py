"""`python -m catalog [--root ROOT]`: list, show, samples, diff, verify, serve, reindex."""

from __future__ import annotations

import sys
from typing import Sequence

from catalog.manifest import ManifestError
from catalog.shards import ShardError
from catalog.cli import build_parser
from catalog.config import ConfigError

COMMANDS = [
    "catalog.commands.list_versions",
    "catalog.commands.show",
    "catalog.commands.samples",
    "catalog.commands.diff",
    "catalog.commands.verify",
    "catalog.commands.serve",
    "catalog.commands.reindex",
]


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m catalog", __doc__, COMMANDS)
    parser.add_argument("--root", default=None, help="catalog root: a local path or s3://bucket/prefix (default: $LIPFORGE_ROOT or ./data)")
    args = parser.parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except (LookupError, ManifestError, ShardError, ConfigError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
