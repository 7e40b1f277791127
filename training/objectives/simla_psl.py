"""SIMLA's pseudo-label supervision, PSL (SIMLA §2.4, Eq. 8-9; appendix 3 "Pseudolabel Extraction").

The momentum model's multimodal encoder runs over the caption (queries) and the image
tokens (cross-attention keys); the row of the multimodal [CLS] in its last block's
self-attention map over the language sequence, averaged over heads, ranks the caption's
positions. The tokens at the k = 4 most attended real positions are the image's
pseudo-labels: a multi-hot target over the vocabulary (`psl_targets`), never padding,
start/end of text, `<mask>` or `<person>`, and with `skip_stop_words` not the common English
function words either (SIMLA's code excludes only [CLS], so [SEP], padding and "the"
become "concepts"). The PSL head (one linear layer on the online model's unimodal image
[CLS]) is trained with the mean binary cross-entropy over the vocabulary against the
target mixed with the momentum PSL head's sigmoid outputs by α (Eq. 9: the hard term
weighted 1 - α, the distillation term α; together one BCE against the mixed target).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.simla_functional import psl_targets


class SimlaPslOptions(ObjectiveOptions):
    k: int = Field(4, ge=1)  # pseudo-labels per pair (appendix 3: k = 4 works best)
    skip_stop_words: bool = True


@OBJECTIVES.register("simla_psl")
class SimlaPsl(Objective):
    Options = SimlaPslOptions
    needs = frozenset({"image_tokens"})
    families = frozenset({"single_stream"})
    uses_momentum = True

    def __init__(self, options: SimlaPslOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        self.k, self.vocab_size = options.k, info.vocab_size
        excluded = {*info.special_ids, info.mask_id, *(info.stop_ids if options.skip_stop_words else ())}
        self.excluded = tuple(sorted(excluded))
        self._labels: torch.Tensor | None = None

    def forward(self, outputs, batch, model) -> torch.Tensor:
        momentum, alpha = outputs["momentum"], float(outputs["alpha"])
        teacher, ids, mask = momentum["model"], batch["text"], outputs["text_mask"].bool()
        with torch.no_grad():
            text_in = teacher.fusion_input(ids, momentum["text_states"])
            fused = teacher.fuse(text_in, mask, momentum["image_tokens"], return_attention=True)
            target = psl_targets(fused["cls_attention"], ids, mask, self.k, self.vocab_size, self.excluded)
            self._labels = target.sum(1).mean()
            if alpha > 0:
                soft = at_least_fp32(teacher.psl_logits(momentum["image_tokens"])).sigmoid()
                target = (1 - alpha) * target + alpha * soft
        logits = at_least_fp32(model.psl_logits(outputs["image_tokens"]))
        return F.binary_cross_entropy_with_logits(logits, target)

    def log_metrics(self) -> dict[str, float]:
        return {} if self._labels is None else {"labels_per_pair": float(self._labels)}
