"""`python -m catalog show NAME[@VER]`: funnel, statistics, shards and lineage of a version."""

from __future__ import annotations

import argparse
from typing import Any

from catalog.artifacts import list_artifacts
from catalog.commands.common import add_common, open_catalog, print_json
from catalog.lineage import lineage
from catalog.manifest import modality_of
from catalog.tables import bar, human_bytes, table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="show one version: funnel, stats, shards, lineage")
    parser.add_argument("ref", metavar="NAME[@VER]")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    dataset, version = catalog.resolve(args.ref)
    manifest = catalog.index.manifest(dataset, version)
    graph = lineage(catalog.index, dataset, version)
    found = list_artifacts(catalog.root, f"{dataset}@{version}")
    if args.json:
        print_json({"manifest": manifest, "lineage": graph, "artifacts": found})
        return 0
    print(render(manifest, graph, found))
    return 0


def render(m: dict[str, Any], graph: dict[str, Any], artifacts: dict[str, Any] | None = None) -> str:
    funnel = m["funnel"]
    out = [
        f"{m['dataset']}@{m['version']}  modality {modality_of(m)}  created {m['created']}  code {m['code_version']}",
        f"samples {m['samples']}  shards {len(m['shards'])}  size {human_bytes(sum(s['bytes'] for s in m['shards']))}",
        f"parents: {', '.join(graph['parents']) or '-'}   children: {', '.join(graph['children']) or '-'}",
        "",
        "sources",
        table(
            ["uri", "rows", "sha256"],
            [[s.get("uri"), s.get("rows"), str(s.get("sha256", ""))[:16]] for s in m["sources"]],
        ),
        "",
        f"funnel: {funnel['in']} in -> {funnel['kept']} kept",
        table(
            ["stage", "in", "kept", "rejected"],
            [
                [s["stage"], s["in"], s["kept"], ", ".join(f"{r}={n}" for r, n in s["rejected"].items()) or "-"]
                for s in funnel["stages"]
            ],
        ),
        "",
        "rejected by reason",
        table(
            ["reason", "rows", ""],
            [[r, n, bar(n, max(funnel["rejected"].values()))] for r, n in funnel["rejected"].items()],
        ),
        "",
        f"schema: {', '.join(m['schema'].get('keys', []))}",
        f"views: image {', '.join(m['schema'].get('views', {}).get('image', [])) or '-'}; text {', '.join(m['schema'].get('views', {}).get('text', [])) or '-'}",
        "",
    ]
    for name, hist in m["stats"].items():
        if isinstance(hist, dict) and "edges" in hist:
            out.append(f"{name}")
            edges, counts = hist["edges"], hist["counts"]
            out.append(
                table(
                    ["bin", "n", ""],
                    [[f"[{edges[i]}, {edges[i + 1]})", c, bar(c, max(counts))] for i, c in enumerate(counts)],
                )
            )
        else:
            out.append(f"{name}: {hist:.3f}" if isinstance(hist, float) else f"{name}: {hist}")
        out.append("")
    out.append("shards")
    out.append(
        table(
            ["path", "samples", "bytes", "sha256"],
            [[s["path"], s["samples"], s["bytes"], s["sha256"][:16]] for s in m["shards"]],
        )
    )
    out.append("")
    out.append("lineage (parent -> child)")
    out.extend(f"  {p} -> {c}" for p, c in graph["edges"]) if graph["edges"] else out.append(
        "  (no parents or children)"
    )
    out.append("")
    out.append("artifacts")
    if artifacts:
        rows = []
        for name, a in sorted(artifacts.items()):
            meta = a.get("meta") or {}
            shown = [f"{k}={meta[k]}" for k in ("method", "codes", "grid", "codes_used", "recon_mse") if k in meta]
            size, digest = human_bytes(a["bytes"]), a["sha256"][:16]
            rows.append([name, a["kind"], a["path"], size, digest, a["created"], " ".join(shown) or "-"])
        out.append(table(["name", "kind", "path", "size", "sha256", "created", "meta"], rows))
    else:
        out.append("  (none)")
    return "\n".join(out)
