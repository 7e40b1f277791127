"""`python -m catalog show NAME[@VER]`: funnel, statistics, shards, lineage and runs of a
version; `show RUN` (a recorded training run, see catalog.models): its datasets,
checkpoints and evaluations."""

from __future__ import annotations

import argparse
from typing import Any

from catalog import storage
from catalog.artifacts import list_artifacts
from catalog.commands.common import add_common, open_catalog, print_json
from catalog.errors import NotFound
from catalog.lineage import lineage
from catalog.manifest import modality_of
from catalog.models import headline, load_run, roles_of, run_exists, run_names, run_uri, runs_for_dataset
from catalog.store import Catalog
from catalog.tables import bar, human_bytes, table

HEADLINE_COLUMNS = 6


class NameNotFound(NotFound):
    """A name is neither a dataset nor a recorded run; the message lists both."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show", help="show one version (funnel, stats, shards, lineage, runs) or one training run"
    )
    parser.add_argument("ref", metavar="NAME[@VER] | RUN")
    parser.add_argument("--run", action="store_true", help="REF is a run name (when a dataset has the same name)")
    add_common(parser)


def _is_dataset(catalog: Catalog, name: str) -> bool:
    catalog.refresh()
    return name in catalog.index.datasets() or any(p["dataset"] == name for p in catalog.index.problems())


def _unknown(catalog: Catalog, name: str) -> NameNotFound:
    datasets, runs = catalog.index.datasets(), run_names(catalog.root)
    have = "; ".join(
        [
            f"datasets: {', '.join(datasets)}" if datasets else "no datasets",
            f"runs: {', '.join(runs)}" if runs else "no runs",
        ]
    )
    return NameNotFound(f"no dataset {name!r} and no run {name!r} under {catalog.root} ({have})")


def main(args: argparse.Namespace) -> int:
    catalog = open_catalog(args)
    if args.run or ("@" not in args.ref and not _is_dataset(catalog, args.ref)):
        if args.run or run_exists(catalog.root, args.ref):
            return show_run(catalog, args.ref, args.json)
        raise _unknown(catalog, args.ref)
    dataset, version = catalog.resolve(args.ref)
    manifest = catalog.index.manifest(dataset, version)
    graph = lineage(catalog.index, dataset, version)
    found = list_artifacts(catalog.root, f"{dataset}@{version}")
    runs = runs_for_dataset(catalog.root, f"{dataset}@{version}")
    if args.json:
        print_json({"manifest": manifest, "lineage": graph, "artifacts": found, "runs": runs})
        return 0
    print(render(manifest, graph, found, runs))
    if "@" not in args.ref and run_exists(catalog.root, args.ref):
        print(f"\n(a run is named {args.ref!r} too: python -m catalog show --run {args.ref})")
    return 0


def show_run(catalog: Catalog, run: str, as_json: bool) -> int:
    record = load_run(catalog.root, run)
    if as_json:
        print_json(record)
        return 0
    known = {f"{r['dataset']}@{r['version']}" for r in catalog.index.versions()}
    print(render_run(record, run_uri(catalog.root, run), known))
    return 0


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_run(r: dict[str, Any], where: str, known: set[str] | None = None) -> str:
    """The text of `show RUN`; `known`: the dataset versions under the root (others are marked missing)."""
    objectives = r.get("objectives") or {}
    out = [
        f"run {r['run']}  status {r.get('status') or '-'}  step {_num(r.get('step'))}/{_num(r.get('steps'))}"
        f"  code {r.get('code_version') or '-'}",
        f"created {r.get('created')}  updated {r.get('updated')}  started {r.get('started') or '-'}"
        f"  finished {r.get('finished') or '-'}",
        f"record: {where}" + (f"   logs: {r['log_dir']}" if r.get("log_dir") else ""),
        "objectives: " + (", ".join(f"{k}={_num(v)}" for k, v in objectives.items()) or "-"),
        "",
        "datasets",
    ]
    datasets = r.get("datasets") or {}
    if datasets:
        rows = []
        for ref, e in sorted(datasets.items(), key=lambda kv: ("train" not in roles_of(kv[1]), kv[0])):
            missing = known is not None and ref not in known
            show = f"python -m catalog show {ref}" + ("  (not under this root)" if missing else "")
            rows.append([ref, ",".join(roles_of(e)) or "-", _num(e.get("weight")), _num(e.get("samples_seen")), show])
        out.append(table(["dataset", "roles", "weight", "samples seen", "show"], rows))
    else:
        out.append("  (none)")
    out += ["", "checkpoints"]
    checkpoints = r.get("checkpoints") or []
    out.append(
        table(["step", "path"], [[c["step"], c.get("path", "-")] for c in checkpoints]) if checkpoints else "  (none)"
    )
    if r.get("summary"):
        out += ["", "summary: " + ", ".join(f"{k}={_num(v)}" for k, v in r["summary"].items())]
    evals = r.get("evals") or []
    by_set: dict[str, list[dict[str, Any]]] = {}
    for line in sorted(evals, key=lambda e: e.get("step", 0)):
        by_set.setdefault(line.get("set", "?"), []).append(line)
    if not by_set:
        out += ["", "evaluations: (none)"]
    for name, lines in sorted(by_set.items()):
        names = sorted({m for line in lines for m in line.get("metrics") or {}})
        shown = headline(dict.fromkeys(names), HEADLINE_COLUMNS)
        chance: dict[str, Any] = {}
        for line in lines:
            chance.update(line.get("chance") or {})
        rows = [["chance", *[_num(chance.get(m)) for m in shown], "-"]] if any(m in chance for m in shown) else []
        rows += [
            [line["step"], *[_num((line.get("metrics") or {}).get(m)) for m in shown], _num(line.get("checkpoint"))]
            for line in lines
        ]
        out += [
            "",
            f"evaluations on {name} (python -m catalog show {name})",
            table(["step", *shown, "checkpoint"], rows),
        ]
        if len(names) > len(shown):
            out.append(f"  ({len(names) - len(shown)} more metrics: --json)")
        files = [(line["step"], f) for line in lines for f in line.get("files") or []]
        if files:
            out.append("  files:")
            out.extend(f"    step {step}: {storage.join(where, f)}" for step, f in files)
    return "\n".join(out)


def render(
    m: dict[str, Any],
    graph: dict[str, Any],
    artifacts: dict[str, Any] | None = None,
    runs: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
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
    out.append("")
    out.append("runs")
    runs = runs or {"trained": [], "evaluated": []}
    for label, key in (("trained on it", "trained"), ("evaluated on it", "evaluated")):
        names = [s["run"] for s in runs.get(key, [])]
        out.append(f"  {label}: " + (", ".join(names) if names else "-"))
    if runs.get("trained") or runs.get("evaluated"):
        out.append("  (python -m catalog show RUN)")
    return "\n".join(out)
