"""`python -m catalog samples NAME[@VER]`: captions, views and where each image member is."""

from __future__ import annotations

import argparse
import json

from catalog.commands.common import add_common, open_catalog, print_json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("samples", help="print samples with their views and image locations")
    parser.add_argument("ref", metavar="NAME[@VER]")
    parser.add_argument("--n", type=int, default=20, help="how many samples (default 20)")
    parser.add_argument("--start", type=int, default=0, help="position of the first sample (default 0)")
    parser.add_argument("--key", help="only the sample with this __key__")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    dataset, version = catalog.resolve(args.ref)
    if args.key:
        refs = [catalog.find_key(dataset, version, args.key)]
    else:
        refs = catalog.page(dataset, version, args.start, args.n)
    records = [catalog.describe(ref) for ref in refs]
    if args.json:
        print_json(records)
        return 0
    for rec in records:
        print(f"#{rec['position']}  {rec['key']}  ({rec['shard']})")
        print(f"  caption: {rec['caption']}")
        for ext, text in rec["text_views"].items():
            print(f"  {ext}: {text}")
        for ext, loc in rec["images"].items():
            print(f"  {ext}: {loc['shard']} :: {loc['member']} (offset {loc['offset']}, {loc['bytes']} B)")
        print(f"  json: {json.dumps(rec['json'], sort_keys=True, ensure_ascii=False)}")
        print()
    return 0
