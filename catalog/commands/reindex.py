"""`python -m catalog reindex`: rebuild the catalog index from the manifests."""

from __future__ import annotations

import argparse

from catalog.commands.common import add_common, open_catalog, print_json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reindex", help="rebuild the catalog index from the manifests")
    parser.add_argument("--offsets", action="store_true", help="also build every shard's offset index now")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    counts = catalog.index.rebuild()
    if args.offsets:
        for row in catalog.index.versions():
            catalog.keys(row["dataset"], row["version"])
    result = {
        "root": catalog.root,
        "index": catalog.index.path,
        "versions": counts["added"],
        "problems": catalog.index.problems(),
    }
    if args.json:
        print_json(result)
    else:
        print(f"indexed {result['versions']} versions of {catalog.root} into {result['index']}")
        for p in result["problems"]:
            print(f"warning: skipped {p['dataset']}@{p['version']}: {p['error']}")
    return 0
