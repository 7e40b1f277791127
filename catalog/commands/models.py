"""`python -m catalog models`: every recorded training run, its datasets and latest metrics."""

from __future__ import annotations

import argparse

from catalog.commands.common import add_common, print_json, root_of
from catalog.models import headline, list_runs
from catalog.tables import table

COLUMNS = ["run", "status", "step", "trained on", "eval sets", "latest", "updated"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list recorded training runs and their evaluations")
    add_common(parser)


def step_cell(summary: dict) -> str:
    step, steps = summary.get("step"), summary.get("steps")
    return f"{'-' if step is None else step}/{'-' if steps is None else steps}"


def latest_cell(summary: dict) -> str:
    """`SET step N: metric=value ...` for each eval set's latest evaluation (headline metrics)."""
    parts = []
    for name, latest in sorted(summary["latest"].items()):
        metrics = latest["metrics"]
        shown = " ".join(f"{m}={_value(metrics[m])}" for m in headline(metrics))
        parts.append(f"{name} step {latest['step']}: {shown or '-'}")
    return "; ".join(parts) or "-"


def _value(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def main(args: argparse.Namespace) -> int:
    root = root_of(args)
    runs = list_runs(root)
    if args.json:
        print_json({"root": root, "runs": runs})
        return 0
    if not runs:
        print(f"no runs recorded under {root}")
        return 0
    rows = [
        [
            s["run"],
            s["status"] or "-",
            step_cell(s),
            ", ".join(s["trained"]) or "-",
            ", ".join(s["evaluated"]) or "-",
            latest_cell(s),
            s["updated"] or "-",
        ]
        for s in runs
    ]
    print(table(COLUMNS, rows))
    return 0
