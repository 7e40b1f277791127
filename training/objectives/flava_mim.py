"""FLAVA's masked image modelling on image-only batches (FLAVA supplement A.1: dVAE codebook
of 8,192 visual tokens; B.1 "Vision encoder pretraining" follows BEiT).

BEiT-style: blockwise masking of about 40% of the patches (`functional.block_mask`), the
masked patch embeddings replaced by a learned mask token (`DualEncoder.masked_image_pass`),
and a linear head on each masked patch's output predicting its visual-token id. The ids
come from the configured visual tokenizer (`python -m training tokenizer build`, or a
dVAE encoder of the user's) applied to **the very tensor the ViT sees** (SIMLA's public
code tokenises a differently augmented crop, so its targets belong to another view). The
tokenizer is frozen; it is part of this module, so the checkpoint holds the codebook used.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions
from training.objectives.functional import block_mask


class MimOptions(ObjectiveOptions):
    mask_ratio: float = 0.4
    min_block: int = 4  # patches in the smallest masked block (BEiT: 16 of a 14x14 grid)
    # NAME@VERSION whose recorded codebook to use, or a path (a saved tokenizer or a
    # TorchScript dVAE encoder); None: the codebook of the run's image-only source
    tokenizer: str | None = None


@OBJECTIVES.register("flava_mim")
class MaskedImageModelling(Objective):
    Options = MimOptions
    batch_members = ("jpg",)
    modalities = frozenset({"image"})
    uses_visual_tokenizer: ClassVar[bool] = True

    def __init__(self, options: MimOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        if info.visual_tokenizer is None:
            raise ValueError("flava_mim needs a visual tokenizer (objectives.flava_mim.options.tokenizer)")
        self.ratio, self.min_block, self.grid = options.mask_ratio, options.min_block, info.grid
        self.tokenizer = info.visual_tokenizer.requires_grad_(False)
        if hasattr(self.tokenizer, "check"):  # e.g. a dVAE whose token grid is not the ViT's patch grid
            self.tokenizer.check(info.image_size, info.grid)
        self.mask_token = nn.Parameter(torch.zeros(info.vision_width).normal_(std=0.02))
        self.head = nn.Linear(info.vision_width, int(self.tokenizer.codes))
        self._accuracy: float | None = None

    def forward(self, outputs, batch, model) -> torch.Tensor:
        image = batch["image"]
        with torch.no_grad():
            self.tokenizer.eval()
            targets = self.tokenizer(image.float(), self.grid)
        mask = block_mask(image.shape[0], self.grid, ratio=self.ratio, min_block=self.min_block, device=image.device)
        states = model.masked_image_pass(image, mask, self.mask_token)
        logits = self.head(states[mask])
        target = targets[mask]
        with torch.no_grad():
            self._accuracy = (logits.argmax(-1) == target).float().mean().item()
        return F.cross_entropy(logits.float(), target)

    def log_metrics(self) -> dict[str, float]:
        return {} if self._accuracy is None else {"accuracy": self._accuracy}
