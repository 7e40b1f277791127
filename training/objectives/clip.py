"""CLIP's symmetric InfoNCE (Radford et al. 2021, Sec. 2.3; FILIP Eq. 1 with global features)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.gather import all_gather_with_grad, gather_sizes, global_offset, share


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised features [B, d]; `logit_scale` is the multiplier."""
    return clip_loss_local(image_features, text_features, image_features, text_features, logit_scale, offset=0)


def clip_loss_local(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    image_all: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """The local rows' mean loss against the whole (gathered) batch.

    Row i of the local batch is row `offset + i` of the global batch (its positive).
    """
    return contrastive_row_losses(image_local, text_local, image_all, text_all, logit_scale, offset).mean()


def contrastive_row_losses(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    image_all: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """Per local row i: (CE(image_i vs all texts) + CE(text_i vs all images)) / 2; positive at `offset + i`."""
    labels = torch.arange(image_local.shape[0], device=image_local.device) + offset
    i2t = F.cross_entropy(logit_scale * image_local @ text_all.T, labels, reduction="none")
    t2i = F.cross_entropy(logit_scale * text_local @ image_all.T, labels, reduction="none")
    return (i2t + t2i) / 2


class ClipOptions(ObjectiveOptions):
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0


@OBJECTIVES.register("clip")
class ClipObjective(Objective):
    """Global-feature contrastive loss with a learnable temperature (clamped at `max_logit_scale`)."""

    Options = ClipOptions
    needs = frozenset({"image_features", "text_features"})
    batch_members = ("jpg", "txt")

    def __init__(self, options: ClipOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, options.max_logit_scale)

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        image, text = at_least_fp32(outputs["image_features"]), at_least_fp32(outputs["text_features"])
        rows = image.shape[0]
        sizes = gather_sizes(rows, image.device)
        image_all, text_all = all_gather_with_grad(image, text, sizes=sizes)
        loss = clip_loss_local(image, text, image_all, text_all, self.logit_scale(), global_offset(rows, sizes))
        # the local mean weighted by this worker's share: exactly 1 with equal sizes; with unequal
        # ones, data-parallel averaging then still gives the full-batch gradient (gather.py)
        return loss * share(rows, sizes)
