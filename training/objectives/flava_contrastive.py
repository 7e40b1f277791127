"""FLAVA's global contrastive loss (Singh et al. 2022, supplement C "Global vs. local contrastive
losses"; A.1: temperature 0.07 learned, projection dim 512 = the model's `embed_dim` here).

`global` (FLAVA): image and text features are gathered across workers and the loss is
back-propagated through the gather to every worker. Each worker scores its LOCAL rows
against ALL columns; its loss is `world * sum_r / N`, `sum_r` the sum of its rows'
per-row losses (image→text and text→image cross-entropy, halved) and `N` the global batch.
After data-parallel gradient AVERAGING the update is then exactly the single-process
full-batch gradient, with equal or unequal per-worker batch sizes.

`local` (the "local contrastive" counterpart of FLAVA Table C.1, as in CLIP's reference
implementation [4]): the other workers' features are gathered WITHOUT gradient, so only
this worker's features receive gradient (from its rows and from its own columns); same
scaling.

What the public implementations get wrong and this one does not: gathering with gradient
but computing the full N x N loss on every worker multiplies the gradient by the world
size (open_clip #616, without `local_loss`); labels `local_bs * rank + arange`
(torchmultimodal) assume equal batch sizes on every worker. Here the labels are the true
global offsets (`gather.global_offset`) and the weighting above holds for any sizes.

Logged value: each worker's loss is its local mean times `world * n_r / N`; the mean of
these over workers is the full-batch loss for any sizes, and with equal sizes each
worker's value is simply its local mean. The logit scale exp(log_scale) is clamped to
[1, max_logit_scale] (FLAVA clamps the log scale to [0, ln 100]).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.clip import contrastive_row_losses
from training.objectives.gather import all_gather_no_grad, all_gather_with_grad, gather_sizes, world


def flava_contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    mode: Literal["global", "local"] = "global",
) -> torch.Tensor:
    """This worker's loss (see the module docstring); one process: the full-batch mean.

    Features [B_r, d], L2-normalised; B_r may differ between workers.
    """
    if mode not in ("global", "local"):
        raise ValueError(f"mode must be 'global' or 'local', got {mode!r}")
    image, text = at_least_fp32(image_features), at_least_fp32(text_features)
    rank, size = world()
    rows = image.shape[0]
    sizes = gather_sizes(rows, image.device)
    offset, total = sum(sizes[:rank]), sum(sizes)
    if size == 1:
        image_all, text_all = image, text
    elif mode == "global":
        image_all, text_all = all_gather_with_grad(image, text, sizes=sizes)
    else:
        both = all_gather_no_grad(torch.cat([image, text], dim=1), sizes=sizes)
        image_all, text_all = both[:, : image.shape[1]], both[:, image.shape[1] :]
        # this worker's own columns keep their gradient
        image_all = torch.cat([image_all[:offset], image, image_all[offset + rows :]])
        text_all = torch.cat([text_all[:offset], text, text_all[offset + rows :]])
    per_row = contrastive_row_losses(image, text, image_all, text_all, logit_scale, offset)
    return per_row.sum() * (size / max(total, 1))


class FlavaContrastiveOptions(ObjectiveOptions):
    mode: Literal["global", "local"] = "global"
    init_temperature: float = Field(0.07, gt=0.0)
    max_logit_scale: float = Field(100.0, ge=1.0)


@OBJECTIVES.register("flava_contrastive")
class FlavaContrastiveObjective(Objective):
    """Image-text contrastive loss over global features, gathered with (`global`) or without (`local`) gradient."""

    Options = FlavaContrastiveOptions
    needs = frozenset({"image_features", "text_features"})
    batch_members = ("jpg", "txt")
    modalities = frozenset({"pair"})

    def __init__(self, options: FlavaContrastiveOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, options.max_logit_scale)
        self.options = options

    def logit_scale(self) -> torch.Tensor:
        """exp(log_scale) clamped to [1, max_logit_scale] (FLAVA: log scale in [0, ln 100])."""
        return self.log_scale.exp().clamp(min=1.0, max=self.max_logit_scale)

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        return flava_contrastive_loss(
            outputs["image_features"], outputs["text_features"], self.logit_scale(), self.options.mode
        )
