"""SIMLA's symmetric cross-modality reconstruction, XMM (SIMLA §2.3, Eq. 6-7).

- MLM conditioned on the image: BERT masking of the caption (15%; `functional.mask_tokens`),
  the masked caption through the multimodal encoder with the whole image
  (`SingleStream.fuse`), the tied MLM head predicts the masked tokens.
- MIM conditioned on the text: BEiT blockwise masking of the patches (`functional.block_mask`,
  40%), the masked image through the ViT with the model's learned mask token
  (`masked_image_pass`), its tokens as queries through the multimodal blocks attending to
  the caption (`fuse_image`), the MIM head predicts each masked patch's visual token. The
  targets are the visual tokenizer's ids of **the very tensor the ViT sees** (SIMLA's
  public code tokenises a differently augmented crop).
- Momentum distillation (Eq. 7): each cross-entropy is mixed with the cross-entropy against
  the momentum model's softmax on the same masked inputs, by α:
  (1 - α)·L_MIM + α·L'_MIM + (1 - α)·L_MLM + α·L'_MLM.

The visual tokenizer is frozen and part of this module (the checkpoint holds the codebook).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions
from training.objectives.functional import IGNORE_INDEX, block_mask, distilled_cross_entropy, mask_tokens


class SimlaXmmOptions(ObjectiveOptions):
    mlm_prob: float = Field(0.15, ge=0.0, le=1.0)
    mim_ratio: float = Field(0.4, gt=0.0, lt=1.0)
    min_block: int = Field(4, ge=1)
    mlm_weight: float = Field(1.0, ge=0.0)
    mim_weight: float = Field(1.0, ge=0.0)
    # NAME@VERSION whose recorded codebook to use, or a path; None: the run's first source's
    tokenizer: str | None = None


def _share(hits: torch.Tensor) -> torch.Tensor:
    """The share of True in `hits` (0 when empty), on the device: no host sync."""
    return hits.float().sum() / max(1, hits.numel())


@OBJECTIVES.register("simla_xmm")
class SimlaXmm(Objective):
    Options = SimlaXmmOptions
    needs = frozenset({"image_tokens", "text_states"})
    families = frozenset({"single_stream"})
    uses_momentum = True
    uses_visual_tokenizer: ClassVar[bool] = True

    def __init__(self, options: SimlaXmmOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        if info.visual_tokenizer is None:
            raise ValueError("simla_xmm needs a visual tokenizer (objectives.simla_xmm.options.tokenizer)")
        self.options, self.info = options, info
        self.tokenizer = info.visual_tokenizer.requires_grad_(False)
        if hasattr(self.tokenizer, "check"):
            self.tokenizer.check(info.image_size, info.grid)
        self._metrics: dict[str, torch.Tensor] = {}

    def forward(self, outputs, batch, model) -> torch.Tensor:
        momentum, alpha = outputs["momentum"], float(outputs["alpha"])
        teacher = momentum["model"]
        loss = outputs["image_tokens"].new_zeros((), dtype=torch.float32)
        if self.options.mlm_weight:
            loss = loss + self.options.mlm_weight * self._mlm(outputs, batch, model, momentum, teacher, alpha)
        if self.options.mim_weight:
            loss = loss + self.options.mim_weight * self._mim(outputs, batch, model, momentum, teacher, alpha)
        return loss

    def _mlm(self, outputs, batch, model, momentum, teacher, alpha) -> torch.Tensor:
        ids, mask = batch["text"], outputs["text_mask"].bool()
        info = self.info
        masked, labels = mask_tokens(ids, mask, info.mask_id, info.vocab_size, info.special_ids, self.options.mlm_prob)
        chosen = labels != IGNORE_INDEX
        logits = model.mlm_head(model.fuse(masked, mask, outputs["image_tokens"])["states"][chosen])
        with torch.no_grad():
            soft = teacher.mlm_head(teacher.fuse(masked, mask, momentum["image_tokens"])["states"][chosen])
            self._metrics["mlm_accuracy"] = _share(logits.argmax(-1) == labels[chosen])
        return distilled_cross_entropy(logits, labels[chosen], soft, alpha)

    def _mim(self, outputs, batch, model, momentum, teacher, alpha) -> torch.Tensor:
        image, mask = batch["image"], outputs["text_mask"].bool()
        grid = self.info.grid
        with torch.no_grad():
            self.tokenizer.eval()
            targets = self.tokenizer(image.float(), grid)
        patches = block_mask(
            image.shape[0], grid, ratio=self.options.mim_ratio, min_block=self.options.min_block, device=image.device
        )
        tokens = model.masked_image_pass(image, patches, model.mim_mask_token)
        states = model.fuse_image(tokens, outputs["text_states"], mask)[:, 1:]
        logits = model.mim_head(states[patches])
        with torch.no_grad():
            tokens_m = teacher.masked_image_pass(image, patches, teacher.mim_mask_token)
            soft = teacher.mim_head(teacher.fuse_image(tokens_m, momentum["text_states"], mask)[:, 1:][patches])
            self._metrics["mim_accuracy"] = _share(logits.argmax(-1) == targets[patches])
        return distilled_cross_entropy(logits, targets[patches], soft, alpha)

    def log_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._metrics.items()}
