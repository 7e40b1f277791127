"""SIMLA's image-text contrastive loss with momentum queues and momentum distillation
(SIMLA §2.2 "Image-Text Contrastive Learning", Eq. 1-4; §3: queues of M = 65,536, α ramped
0 -> 0.4, learnable temperature; ALBEF's clamp of τ to [0.001, 0.5]).

Each of this worker's image features (the online model's, with gradient) is scored against
every text feature of the momentum model: the whole global batch's (gathered without
gradient) and the text queue's (earlier batches' momentum features); texts likewise
against images. The positive of local row i is the momentum feature of its own pair,
column `offset + i`. The target mixes the one-hot positive with the momentum model's own
softmax over the same columns, by α (Eq. 3-4: (1 - α)·H(y, p) + α·H(p_m, p) is H of the
mixed target). After the loss, the gathered momentum features are pushed into the queues
(identical on every worker; any batch size: the ring pointer wraps). Only filled queue
slots take part (ALBEF starts from random vectors that act as negatives until overwritten).
Each worker's loss is its local mean scaled by its share of the global batch, so gradient
averaging gives the full-batch mean with unequal per-worker batches too.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.functional import distilled_cross_entropy
from training.objectives.gather import all_gather_no_grad, gather_sizes, global_offset, share
from training.objectives.queue import FeatureQueue


class SimlaItcOptions(ObjectiveOptions):
    queue_size: int = Field(65536, ge=1)
    init_temperature: float = Field(0.07, gt=0.0)
    min_temperature: float = Field(0.001, gt=0.0)
    max_temperature: float = Field(0.5, gt=0.0)

    @model_validator(mode="after")
    def _range(self) -> SimlaItcOptions:
        if not self.min_temperature <= self.init_temperature <= self.max_temperature:
            raise ValueError("need min_temperature <= init_temperature <= max_temperature")
        return self


@OBJECTIVES.register("simla_itc")
class SimlaItc(Objective):
    Options = SimlaItcOptions
    needs = frozenset({"image_features", "text_features"})
    families = frozenset({"single_stream"})
    uses_momentum = True

    def __init__(self, options: SimlaItcOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(
            options.init_temperature,
            max_logit_scale=1.0 / options.min_temperature,
            min_logit_scale=1.0 / options.max_temperature,
        )
        self.image_queue = FeatureQueue(options.queue_size, info.embed_dim)
        self.text_queue = FeatureQueue(options.queue_size, info.embed_dim)
        self._fill: float | None = None

    def forward(self, outputs, batch, model=None) -> torch.Tensor:
        image, text = at_least_fp32(outputs["image_features"]), at_least_fp32(outputs["text_features"])
        momentum, alpha = outputs["momentum"], float(outputs["alpha"])
        rows = image.shape[0]
        sizes = gather_sizes(rows, image.device)
        offset = global_offset(rows, sizes)
        with torch.no_grad():
            image_m = at_least_fp32(all_gather_no_grad(momentum["image_features"], sizes=sizes))
            text_m = at_least_fp32(all_gather_no_grad(momentum["text_features"], sizes=sizes))
            image_bank = torch.cat([image_m, self.image_queue.rows().to(image_m)])
            text_bank = torch.cat([text_m, self.text_queue.rows().to(text_m)])
        scale = self.logit_scale()
        positives = torch.arange(offset, offset + rows, device=image.device)
        local_m = slice(offset, offset + rows)
        with torch.no_grad():
            i2t_m = scale.detach() * image_m[local_m] @ text_bank.T
            t2i_m = scale.detach() * text_m[local_m] @ image_bank.T
        loss_i2t = distilled_cross_entropy(scale * image @ text_bank.T, positives, i2t_m, alpha)
        loss_t2i = distilled_cross_entropy(scale * text @ image_bank.T, positives, t2i_m, alpha)
        if self.training:  # evaluation passes leave the queues as they are
            self.image_queue.push(image_m)
            self.text_queue.push(text_m)
        self._fill = self.image_queue.filled / self.image_queue.size
        return (loss_i2t + loss_t2i) / 2 * share(rows, sizes)

    def log_metrics(self) -> dict[str, float]:
        return {} if self._fill is None else {"queue_fill": self._fill}
