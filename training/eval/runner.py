"""Run the configured evaluation tasks over the configured eval sets, and say what came out.

`evaluate(model, cfg, device)` reads each set of `cfg.eval.sets` once (its images encoded once,
shared by every task), runs every task of `cfg.eval.tasks` on it and returns one
`SetResult` per set. Late interaction is used (token-wise zero-shot ensemble, `late`
retrieval scorer) when the run trains the `filip` objective, unless a task's options say
otherwise. `report(results)` is the text a person reads: each metric next to its chance.
Called every `eval.every_steps` and at the end of a training run (rank 0), and by
`python -m training eval RUN_OR_CHECKPOINT`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from training.config import TrainConfig
from training.eval.base import EVAL_TASKS, EvalContext, options_of
from training.eval.sets import load_eval_set


@dataclass
class SetResult:
    ref: str
    metrics: dict[str, float] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def uses_late_interaction(cfg: TrainConfig) -> bool:
    return "filip" in cfg.objectives


@torch.no_grad()
def evaluate(model: torch.nn.Module, cfg: TrainConfig, device: str | torch.device = "cpu") -> list[SetResult]:
    was_training = model.training
    model.eval()
    masking = getattr(model.visual.patch_dropout, "enabled", False)
    model.set_masking(False)
    results = []
    try:
        for ref in cfg.eval.sets:
            data = load_eval_set(cfg.root, ref, model.image_size, cfg.eval.max_images)
            ctx = EvalContext(model, data, uses_late_interaction(cfg), device, cfg.eval.batch_size)
            result = SetResult(data.ref)
            for name, options in cfg.eval.tasks.items():
                task = EVAL_TASKS.get(name)(options_of(name, options))
                got = task.run(ctx)
                result.metrics.update(got.metrics)
                result.chance.update(got.chance)
                result.files.update(got.files)
                result.notes.extend(got.notes)
            results.append(result)
    finally:
        model.visual.patch_dropout.enabled = masking
        model.train(was_training)
    return results


HEADLINE = (
    "zeroshot/shape/top1",
    "zeroshot/colour/top1",
    "zeroshot/shape_colour/top1",
    "zeroshot/label/top1",
    "retrieval/i2t_r1",
    "retrieval/i2t_r5",
    "retrieval/t2i_r1",
    "retrieval/t2i_r5",
    "probe/shape_colour/top1",
    "probe/label/top1",
    "alignment/localisation_acc",
)


def report(results: list[SetResult], files: dict[str, list[str]] | None = None, headline: bool = False) -> str:
    """Metric lines (`value  (chance c)`) per set, its notes and the paths of its drawings;
    `headline`: only the `HEADLINE` metrics, no notes."""
    lines = []
    for r in results:
        lines.append(f"eval set {r.ref}")
        names = [n for n in HEADLINE if n in r.metrics] if headline else sorted(r.metrics)
        for name in names:
            value = r.metrics[name]
            if name in r.chance:
                ratio = f", {value / r.chance[name]:.1f}x chance" if r.chance[name] > 0 else ""
                lines.append(f"  {name:34s} {value:7.3f}   (chance {r.chance[name]:.3f}{ratio})")
            else:
                lines.append(f"  {name:34s} {value:7.0f}")
        lines.extend(f"  note: {n}" for n in ([] if headline else r.notes))
        for path in (files or {}).get(r.ref, []):
            lines.append(f"  word-patch drawing: {path}")
    return "\n".join(lines)


def report_summary(evaluated: dict, headline: bool = True) -> str:
    """`report` of a run summary's `eval` entry ({"step", "sets": {ref: {metrics, chance, notes, files}}})."""
    results = [
        SetResult(ref, e["metrics"], e["chance"], notes=e.get("notes", [])) for ref, e in evaluated["sets"].items()
    ]
    files = {ref: e.get("files", []) for ref, e in evaluated["sets"].items()}
    return f"evaluation at step {evaluated['step']}\n" + report(results, files, headline)
