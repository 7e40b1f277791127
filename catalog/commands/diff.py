"""`python -m catalog diff NAME@A NAME@B`: counts, sample keys added/removed, funnel deltas."""

from __future__ import annotations

import argparse

from catalog.commands.common import add_common, open_catalog, print_json
from catalog.diff import diff_versions
from catalog.tables import table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diff", help="compare two versions")
    parser.add_argument("a", metavar="NAME@A")
    parser.add_argument("b", metavar="NAME@B")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    d = diff_versions(open_catalog(args), args.a, args.b)
    if args.json:
        print_json(d)
        return 0
    s, k, f = d["samples"], d["keys"], d["funnel"]
    print(f"{d['a']} -> {d['b']}")
    print(f"samples: {s['a']} -> {s['b']} ({s['delta']:+d})")
    print(f"sample keys: +{k['added']} added, -{k['removed']} removed, {k['kept']} in both")
    for label, examples in (("added", k["added_examples"]), ("removed", k["removed_examples"])):
        if examples:
            print(f"  {label}: {', '.join(examples)}{' ...' if len(examples) < k[label] else ''}")
    print(
        f"shards: +{len(d['shards']['added'])} added, -{len(d['shards']['removed'])} removed, {d['shards']['shared']} shared"
    )
    print(f"schema: added {', '.join(d['schema']['added']) or '-'}; removed {', '.join(d['schema']['removed']) or '-'}")
    print(f"funnel: in {f['in']:+d}, kept {f['kept']:+d}")
    print(table(["reason", "delta"], [[r, f"{n:+d}"] for r, n in f["rejected"].items()]))
    print(
        table(
            ["stage", "in delta", "kept delta"],
            [[st["stage"], f"{st['in']:+d}", f"{st['kept']:+d}"] for st in f["stages"]],
        )
    )
    return 0
