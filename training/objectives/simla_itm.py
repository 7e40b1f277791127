"""SIMLA's image-text matching with in-batch hard negatives (SIMLA §2.2 "Image-Text Matching",
Eq. 5, "following ALBEF": a binary head on the multimodal [CLS]).

For every pair of this worker the multimodal encoder sees three inputs: the pair itself
(label 1), the image with a hard negative caption and the caption with a hard negative
image (label 0). Negatives come from the whole global batch: features are gathered
(without gradient) to score every image against every caption, `sample_itm_negatives`
draws one negative per row with probability ∝ softmax(similarity / τ) off the diagonal in
one vectorised fp32 call (never the positive; degenerate rows fall back to uniform over
the others), and the image tokens and caption states are gathered with gradient so a
negative from another worker trains that worker's encoders too (BLIP's
`negative_all_rank`). ALBEF's row-by-row `torch.multinomial` crashes on inf/NaN rows and
syncs 2·B times a step. τ is this objective's own (`temperature`, fixed): ALBEF reuses
ITC's learned temperature, which would tie ITM to simla_itc being configured.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.gather import all_gather_no_grad, all_gather_with_grad, gather_sizes, global_offset, share
from training.objectives.simla_functional import sample_itm_negatives


class SimlaItmOptions(ObjectiveOptions):
    temperature: float = Field(0.07, gt=0.0)  # of the softmax the negatives are drawn from


@OBJECTIVES.register("simla_itm")
class SimlaItm(Objective):
    Options = SimlaItmOptions
    needs = frozenset({"image_features", "text_features", "image_tokens", "text_states"})
    families = frozenset({"single_stream"})

    def __init__(self, options: SimlaItmOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        self.temperature = options.temperature
        self._accuracy: float | None = None

    def forward(self, outputs, batch, model) -> torch.Tensor:
        ids, mask, image_tokens = batch["text"], outputs["text_mask"].bool(), outputs["image_tokens"]
        rows = ids.shape[0]
        sizes = gather_sizes(rows, ids.device)
        offset = global_offset(rows, sizes)
        local = slice(offset, offset + rows)
        with torch.no_grad():
            image_f = at_least_fp32(all_gather_no_grad(outputs["image_features"], sizes=sizes))
            text_f = at_least_fp32(all_gather_no_grad(outputs["text_features"], sizes=sizes))
            sim = image_f @ text_f.T / self.temperature
            neg_text, neg_image = (idx[local] for idx in sample_itm_negatives(sim, sim.T))
            ids_all = all_gather_no_grad(ids, sizes=sizes)
            mask_all = all_gather_no_grad(mask, sizes=sizes)
        text_in = model.fusion_input(ids, outputs["text_states"])
        if text_in.is_floating_point():  # unimodal states: reused, and gathered with their gradient
            image_all, text_all = all_gather_with_grad(image_tokens, text_in, sizes=sizes)
        else:
            (image_all,), text_all = all_gather_with_grad(image_tokens, sizes=sizes), ids_all
        # index_select, not `x[idx]`: a row drawn twice then sums its gradients in a fixed order
        # (advanced indexing's backward accumulates in thread order on a multi-threaded CPU)
        texts = torch.cat([text_in, text_all.index_select(0, neg_text), text_in])
        masks = torch.cat([mask, mask_all[neg_text], mask])
        images = torch.cat([image_tokens, image_tokens, image_all.index_select(0, neg_image)])
        logits = model.itm_head(model.fuse(texts, masks, images)["cls"])
        labels = torch.cat([torch.ones(rows), torch.zeros(2 * rows)]).long().to(logits.device)
        with torch.no_grad():
            self._accuracy = (logits.argmax(-1) == labels).float().mean()
        return F.cross_entropy(at_least_fp32(logits), labels) * share(rows, sizes)

    def log_metrics(self) -> dict[str, float]:
        return {} if self._accuracy is None else {"accuracy": float(self._accuracy)}
