"""Image <-> text retrieval, R@1/5/10 both ways (FILIP §4.2 Table 3; SIMLA §4.3).

Correct with several captions per image (an image query is right when any of its captions
is in the top K: `training.eval.metrics`), ties pessimistic, chance beside each number.
The scorer is pluggable (`training.eval.scoring.SCORERS`): `cosine`, or `late` (FILIP late
interaction re-scoring each query's top `k` candidates by cosine; exact when k >= the
candidates), or `itm` (a single-stream model's ITC ranking with each query's top `k` = 256
re-ranked by its ITM head, SIMLA §4.3 / ALBEF; the ITC-only recalls are reported beside it
as `retrieval/itc_*`); `auto` picks `itm` for a single-stream model, `late` for a model
trained with the `filip` objective, else `cosine`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from training.eval.base import EvalContext, EvalTask, TaskOptions, TaskResult, register
from training.eval.metrics import chance_recall, recall_at
from training.eval.scoring import SCORERS

KS = (1, 5, 10)


DEFAULT_K = {"late": 32, "itm": 256}  # candidates re-scored per query (itm: ALBEF's k_test)


class Options(TaskOptions):
    scorer: Literal["auto", "cosine", "late", "itm"] = "auto"
    k: int | None = Field(None, ge=1)  # candidates re-scored per query (late, itm); None: DEFAULT_K


@register("retrieval")
class Retrieval(EvalTask):
    Options = Options

    def run(self, ctx: EvalContext) -> TaskResult:
        out = TaskResult()
        scorer = self.options.scorer
        if scorer == "auto":
            scorer = "itm" if ctx.family == "single_stream" else ("late" if ctx.late else "cosine")
        k = self.options.k or DEFAULT_K.get(scorer, 0)
        images, texts = ctx.images(), ctx.texts(ctx.data.captions)
        positives = ctx.data.positives
        ranked = {"": SCORERS.get(scorer)(images, texts, k=k, model=ctx.model)}
        if scorer == "itm":  # the ITC ranking alone, beside the re-ranked one
            ranked["itc_"] = SCORERS.get("cosine")(images, texts)
        for prefix, (i2t, t2i) in ranked.items():
            for direction, scores, pos in (("i2t", i2t, positives), ("t2i", t2i, positives.T)):
                got, chance = recall_at(scores, pos, KS), chance_recall(pos, KS)
                for n in KS:
                    out.metrics[f"retrieval/{prefix}{direction}_r{n}"] = got[n]
                    out.chance[f"retrieval/{prefix}{direction}_r{n}"] = chance[n]
        out.metrics["retrieval/images"] = float(positives.shape[0])
        out.metrics["retrieval/captions"] = float(positives.shape[1])
        out.notes.append(f"retrieval scorer: {scorer}" + (f" (top {k} re-scored)" if scorer in DEFAULT_K else ""))
        return out
