"""Zero-shot classification with prompt templates and ensembles (FILIP §3.1.2, A.5).

Every class name becomes C texts `[prefix] {label}, [category description]. [suffix].`
(FILIP Eq. 6; the full combination of the configured prefixes, descriptions and suffixes).
Global-similarity models ensemble CLIP's way: the mean of the normalised template
embeddings, normalised again. Late-interaction (FILIP) models use FILIP's token-wise
ensemble: the class score is the mean over templates of the image-to-text token-wise
similarity, each template's padding excluded (`training.eval.scoring`). Classes come
from the set's labels (`training.eval.sets`: shape, colour, shape + colour on the shapes
world; a `label` field on a user's set). Top-1 and top-5 with chance (k / classes) beside.
"""

from __future__ import annotations

from typing import Literal

import torch

from training.eval.base import EvalContext, EvalTask, TaskOptions, TaskResult, register
from training.eval.metrics import chance_topk, topk_accuracy
from training.eval.scoring import Encoded, class_scores_global, class_scores_tokenwise
from training.eval.sets import LABEL_KINDS

VOWELS = "aeiou"


def prompt(prefix: str, label: str, description: str = "", suffix: str = "") -> str:
    """FILIP Eq. 6: `[prefix] {label}, [category description]. [suffix].` (a/an agreed)."""
    if prefix.endswith(" a") or prefix == "a":
        prefix = prefix[:-1] + ("an" if label[:1].lower() in VOWELS else "a")
    text = f"{prefix} {label}".strip()
    if description:
        text += f", {description}"
    text += "."
    if suffix:
        text += f" {suffix}."
    return text


class Options(TaskOptions):
    labels: list[Literal["shape", "colour", "shape_colour", "label"]] = list(LABEL_KINDS)
    prefixes: list[str] = ["a", "a picture of a", "an image showing a"]
    descriptions: list[str] = ["", "a shape"]
    suffixes: list[str] = ["", "drawn on a background"]
    ensemble: Literal["auto", "mean_embedding", "tokenwise"] = "auto"  # auto: tokenwise for FILIP models


@register("zeroshot")
class ZeroShot(EvalTask):
    Options = Options

    def templates(self, label: str) -> list[str]:
        o = self.options
        return [prompt(p, label, d, s) for p in o.prefixes for d in o.descriptions for s in o.suffixes]

    def run(self, ctx: EvalContext) -> TaskResult:
        out = TaskResult()
        tokenwise = self.options.ensemble == "tokenwise" or (self.options.ensemble == "auto" and ctx.late)
        for kind in self.options.labels:
            idx, names = ctx.data.labels(kind)
            classes = sorted(set(names))
            if len(classes) < 2:
                out.notes.append(f"zeroshot/{kind}: not applicable ({len(classes)} classes labelled in this set)")
                continue
            images = ctx.images()
            sub = Encoded(images.features[idx], images.tokens[idx], images.mask[idx])
            templates = [ctx.texts(self.templates(c)) for c in classes]
            scores = class_scores_tokenwise(sub, templates) if tokenwise else class_scores_global(sub, templates)
            labels = torch.tensor([classes.index(n) for n in names])
            acc, chance = topk_accuracy(scores, labels), chance_topk(len(classes))
            for k in (1, 5):
                out.metrics[f"zeroshot/{kind}/top{k}"] = acc[k]
                out.chance[f"zeroshot/{kind}/top{k}"] = chance[k]
            out.metrics[f"zeroshot/{kind}/images"] = float(len(idx))
        return out
