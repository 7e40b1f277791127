"""`python -m training eval RUN_OR_CHECKPOINT [--set eval.sets=[NAME@VERSION] ...]`.

Evaluates a trained model (a run name under the checkpoint storage, a run folder or one
checkpoint folder: `training.checkpoints.resolve_checkpoint`) with the `eval` section of
the config it was trained with, after `--set` overrides (e.g. another eval set, one task's
options). Prints each metric next to its chance level and the paths of the word-patch
drawings, and records the evaluation in the catalog under the run (`python -m catalog
models`, `show RUN`, the web page's model page). docs/evaluation.md lists the tasks.
"""

from __future__ import annotations

import argparse
import json

from catalog import models, storage
from catalog.cli import add_overrides
from catalog.config import apply_overrides, validate
from catalog.errors import UserError
from training.config import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a trained model: zero-shot, retrieval, probe, word-patch alignment"
    )
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a run name, a run folder or a checkpoint folder")
    p.add_argument("--storage", default=None, help="checkpoint storage holding run names (default: ./runs)")
    p.add_argument("--root", default=None, help="the catalog root holding the eval sets (default: the run's root)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_overrides(p, "eval.sets=[demo-eval@latest]")


def main(args: argparse.Namespace) -> int:
    from training.checkpoints import load_model, resolve_checkpoint
    from training.eval.runner import evaluate, report

    ckpt = resolve_checkpoint(args.run, storage=args.storage)
    data = ckpt.config.to_dict()
    if args.root:
        data["root"] = args.root
    cfg = validate(TrainConfig, apply_overrides(data, args.overrides), source=f"{ckpt.path} (the run's config)")
    if not cfg.eval.sets:
        raise UserError(f"run {ckpt.run!r} names no eval set: add --set 'eval.sets=[NAME@VERSION]'")
    model = load_model(ckpt)
    results = evaluate(model, cfg)
    paths: dict[str, list[str]] = {}
    for r in results:
        entry = models.record_eval(
            cfg.root, ckpt.run, ckpt.step, r.ref, r.metrics, chance=r.chance, files=r.files, checkpoint=ckpt.path
        )
        paths[r.ref] = [storage.join(models.run_uri(cfg.root, ckpt.run), f) for f in entry.get("files", [])]
    if args.json:
        print(json.dumps([{"set": r.ref, "metrics": r.metrics, "chance": r.chance} for r in results], indent=2))
    else:
        print(f"model {ckpt.run} at step {ckpt.step} ({ckpt.path})")
        print(report(results, paths))
        print(f"recorded in the catalog: python -m catalog --root {cfg.root} show {ckpt.run}")
    return 0
