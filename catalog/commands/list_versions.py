"""`python -m catalog list`: every complete version under the root."""

from __future__ import annotations

import argparse
import sys

from catalog.commands.common import add_common, open_catalog, print_json
from catalog.tables import VERSION_COLUMNS, table, version_cells


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list datasets and their versions")
    parser.add_argument("dataset", nargs="?", help="only this dataset")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    catalog.refresh()
    rows = catalog.index.versions(args.dataset)
    problems = catalog.index.problems()
    if args.json:
        print_json({"root": catalog.root, "versions": rows, "problems": problems})
        return 0
    if not rows:
        print(f"no complete versions under {catalog.root}")
    else:
        print(table(VERSION_COLUMNS, [version_cells(r) for r in rows]))
    for problem in problems:
        print(f"warning: skipped {problem['dataset']}@{problem['version']}: {problem['error']}", file=sys.stderr)
    return 0
