"""Image <-> text retrieval, R@1/5/10 both ways (FILIP §4.2 Table 3; SIMLA §4.3).

Correct with several captions per image (an image query is right when any of its captions
is in the top K: `training.eval.metrics`), ties pessimistic, chance beside each number.
The scorer is pluggable (`training.eval.scoring.SCORERS`): `cosine`, or `late` (FILIP late
interaction re-scoring each query's top `k` candidates by cosine; exact when k >= the
candidates); `auto` picks `late` for a model trained with the `filip` objective.
"""

from __future__ import annotations

from typing import Literal

from training.eval.base import EvalContext, EvalTask, TaskOptions, TaskResult, register
from training.eval.metrics import chance_recall, recall_at
from training.eval.scoring import SCORERS

KS = (1, 5, 10)


class Options(TaskOptions):
    scorer: Literal["auto", "cosine", "late"] = "auto"
    k: int = 32  # late: candidates re-scored per query


@register("retrieval")
class Retrieval(EvalTask):
    Options = Options

    def run(self, ctx: EvalContext) -> TaskResult:
        out = TaskResult()
        scorer = self.options.scorer if self.options.scorer != "auto" else ("late" if ctx.late else "cosine")
        images, texts = ctx.images(), ctx.texts(ctx.data.captions)
        i2t, t2i = SCORERS.get(scorer)(images, texts, k=self.options.k)
        positives = ctx.data.positives
        for direction, scores, pos in (("i2t", i2t, positives), ("t2i", t2i, positives.T)):
            got, chance = recall_at(scores, pos, KS), chance_recall(pos, KS)
            for k in KS:
                out.metrics[f"retrieval/{direction}_r{k}"] = got[k]
                out.chance[f"retrieval/{direction}_r{k}"] = chance[k]
        out.metrics["retrieval/images"] = float(positives.shape[0])
        out.metrics["retrieval/captions"] = float(positives.shape[1])
        out.notes.append(
            f"retrieval scorer: {scorer}" + (f" (top {self.options.k} re-scored)" if scorer == "late" else "")
        )
        return out
