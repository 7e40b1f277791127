"""DeCLIP's multi-view supervision (DeCLIP §3.3 "Multi-View Supervision", Algorithm 1 line 10).

InfoNCE over the 2 x 2 pairs {image, image view} x {caption, text view}, averaged: with the
defaults the model's image, the global view `g1.jpg`, the clean caption and one EDA view
(`eda*.txt`: one of the sample's EDA members per sample). Every input is encoded once per
step by the trainer (shared with SimSiam's views and CLIP's pair). Features of all workers
are gathered with gradient and each worker's loss covers its local rows (see
`training.objectives.gather`), like `clip`.
"""

from __future__ import annotations

import torch

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.clip import clip_loss_local
from training.objectives.gather import all_gather_with_grad, gather_sizes, global_offset, share


class MvsOptions(ObjectiveOptions):
    images: tuple[str, str] = ("image", "g1.jpg")
    texts: tuple[str, str] = ("text", "eda*.txt")
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0


@OBJECTIVES.register("declip_mvs")
class MultiViewObjective(Objective):
    Options = MvsOptions

    def __init__(self, options: MvsOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, options.max_logit_scale)
        self.images, self.texts = options.images, options.texts

    @classmethod
    def members(cls, options: MvsOptions) -> tuple[str, ...]:
        named = [m for m in (*options.images, *options.texts) if m not in ("image", "text")]
        return ("jpg", "txt", *named)

    @classmethod
    def encode_images(cls, options: MvsOptions) -> tuple[str, ...]:
        return tuple(options.images)

    @classmethod
    def encode_texts(cls, options: MvsOptions) -> tuple[str, ...]:
        return tuple(options.texts)

    def forward(self, outputs, batch, model=None) -> torch.Tensor:
        feats = outputs["features"]
        images = [at_least_fp32(feats[k]) for k in self.images]
        texts = [at_least_fp32(feats[k]) for k in self.texts]
        rows = images[0].shape[0]
        sizes = gather_sizes(rows, images[0].device)
        gathered = all_gather_with_grad(*images, *texts, sizes=sizes)
        offset = global_offset(rows, sizes)
        scale = self.logit_scale()
        losses = [
            clip_loss_local(img, txt, gathered[i], gathered[len(images) + j], scale, offset)
            for i, img in enumerate(images)
            for j, txt in enumerate(texts)
        ]
        return sum(losses) / len(losses) * share(rows, sizes)
