"""`python -m catalog rejects NAME@VER [--reason R]`: a version's rejected rows you can look at.

Without `--reason`: one line per reason (check order) with the rows it rejected (manifest
funnel), their share of the input, how many the rejects sample holds and the command that
shows them. With `--reason`: each sampled row's key, URL, scrubbed caption and the scores
that reason's check reads (catalog.rejects).
"""

from __future__ import annotations

import argparse
import shlex

from catalog import rejects
from catalog.commands.common import add_common, open_catalog, print_json
from catalog.scores import SCORES_OF
from catalog.tables import table

DEFAULT_LIMIT = 20


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rejects", help="browse a version's sampled rejected rows, per reason")
    parser.add_argument("ref", metavar="NAME[@VER]")
    parser.add_argument("--reason", help="show the sampled rows of this reason (e.g. not_english)")
    parser.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIMIT, help=f"rows shown with --reason (default {DEFAULT_LIMIT})"
    )
    add_common(parser)


def _command(args: argparse.Namespace, ref: str, reason: str) -> str:
    root = getattr(args, "root", None)
    where = f" --root {shlex.quote(root)}" if root else ""
    return f"python -m catalog{where} rejects {ref} --reason {reason}"


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    dataset, version = catalog.resolve(args.ref)
    manifest = catalog.index.manifest(dataset, version)
    ref, uri = f"{dataset}@{version}", rejects.sample_uri(catalog.root, dataset, version)
    if args.reason:
        return _show_reason(catalog.root, manifest, args, ref, uri)
    counts = rejects.sampled_counts(catalog.root, dataset, version, required=True) or {}
    entries = rejects.summary(manifest, counts)
    cap = rejects.sample_cap(manifest)
    if args.json:
        print_json({"version": ref, "file": uri, "sample_per_reason": cap, "reasons": entries})
        return 0
    funnel = manifest["funnel"]
    if not entries:
        print(f"{ref}: no rows rejected ({funnel['in']} in, {funnel['kept']} kept)")
        return 0
    print(f"{ref}: {funnel['in'] - funnel['kept']} of {funnel['in']} input rows rejected")
    print(f"sample: up to {cap} rows per reason, in {uri}")
    print()
    rows = [
        [e["reason"], e["stage"], e["rejected"], f"{100 * e['share']:.1f}%", e["sampled"]]
        + [_command(args, ref, e["reason"]) if e["sampled"] else "-"]
        for e in entries
    ]
    print(table(["reason", "stage", "rejected", "share", "sampled", "see them"], rows))
    return 0


def _show_reason(root: str, manifest: dict, args: argparse.Namespace, ref: str, uri: str) -> int:
    reason = args.reason
    rejects.check_reason(manifest, reason)
    sampled = (rejects.sampled_counts(root, manifest["dataset"], manifest["version"], required=True) or {}).get(
        reason, 0
    )
    rows = rejects.reason_rows(root, manifest, reason, limit=args.limit)
    rejected = manifest["funnel"]["rejected"].get(reason, 0)
    if args.json:
        shown = [
            {
                **{k: v for k, v in r.items() if k not in ("thumbnail", "duplicate_thumbnail")},
                "thumbnail_bytes": len(r["thumbnail"]) if r.get("thumbnail") else None,
                "duplicate_thumbnail_bytes": len(r["duplicate_thumbnail"]) if r.get("duplicate_thumbnail") else None,
            }
            for r in rows
        ]
        print_json({"version": ref, "reason": reason, "rejected": rejected, "sampled": sampled, "rows": shown})
        return 0
    print(f"{ref} {reason}: {rejected} rejected, {sampled} in the sample, showing {len(rows)}")
    if not rows:
        cap = rejects.sample_cap(manifest)
        print(f"(no sampled rows: the build kept up to {cap} per reason in {uri})")
        return 0
    names = ["caption", *SCORES_OF.get(reason, ())]
    width = max(len(n) for n in names)
    for r in rows:
        print()
        print(f"{r['key']}  {r.get('url') or '-'}")
        print(f"  {'caption'.ljust(width)}  {r.get('caption') if r.get('caption') is not None else '-'}")
        primary, _ = rejects.score_items(r, reason)
        for name, value in primary:
            note = "  (kept representative)" if name == "duplicate_of" and r.get("duplicate_of") else ""
            print(f"  {name.ljust(width)}  {value}{note}")
    if sampled > len(rows):
        print(f"\n(showing {len(rows)} of {sampled} sampled rows: --limit {sampled} for all)")
    return 0
