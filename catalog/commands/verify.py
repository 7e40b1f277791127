"""`python -m catalog verify NAME@VER`: re-hash shards; non-zero exit on any mismatch or missing shard."""

from __future__ import annotations

import argparse

from catalog.commands.common import add_common, open_catalog, print_json
from catalog.tables import table
from catalog.verify import verify_version


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("verify", help="re-hash a version's shards against its manifest")
    parser.add_argument("ref", metavar="NAME@VER")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    report = verify_version(open_catalog(args), args.ref)
    if args.json:
        print_json(report)
    else:
        print(
            table(
                ["shard", "status", "bytes", "expected bytes", "sha256", "expected sha256"],
                [
                    [
                        r["path"],
                        r["status"],
                        r.get("bytes", "-"),
                        r["expected_bytes"],
                        r.get("sha256", "-")[:16],
                        r["expected_sha256"][:16],
                    ]
                    for r in report["shards"]
                ],
            )
        )
        bad = [r for r in report["shards"] if r["status"] != "ok"]
        status = "OK" if report["ok"] else f"FAILED ({len(bad)} of {len(report['shards'])} shards)"
        print(f"{report['version']}: {status}")
    return 0 if report["ok"] else 1
