"""DeCLIP's nearest-neighbour supervision (DeCLIP §3.3 "Nearest-Neighbor Supervision", Fig. 6,
Algorithm 1 lines 5, 11 and 17).

A FIFO queue of caption features (64K in the paper; `queue_size`, default 65,536) stands in
for the data distribution. For each caption the cosine-nearest stored feature z^T' is
found, and InfoNCE from each image input (default the model's image and the view
`g1.jpg`: (z^I, z^T') and (z~^I, z^T')) to the neighbours of the whole global batch gives
extra supervision. After the loss, the captions' features of **all** workers are gathered
and enqueued, so every worker holds the same queue (DeCLIP's code enqueues each GPU's own
features only). The queue is a buffer of this module: its contents, pointer and fill count
are in every checkpoint (DeCLIP keeps it as a plain attribute, so a resumed run searched
random vectors until the bank refilled). The loss is 0 until the queue holds at least one
global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.gather import all_gather_no_grad, gather_sizes, global_offset, share
from training.objectives.queue import FeatureQueue


class NnsOptions(ObjectiveOptions):
    queue_size: int = 65536
    images: tuple[str, ...] = ("image", "g1.jpg")
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0


@OBJECTIVES.register("declip_nns")
class NearestNeighbourObjective(Objective):
    Options = NnsOptions
    needs = frozenset({"text_features"})

    def __init__(self, options: NnsOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, options.max_logit_scale)
        self.images = options.images
        self.queue = FeatureQueue(options.queue_size, info.embed_dim)
        self._active = 0.0

    @classmethod
    def members(cls, options: NnsOptions) -> tuple[str, ...]:
        return ("jpg", "txt", *(m for m in options.images if m != "image"))

    @classmethod
    def encode_images(cls, options: NnsOptions) -> tuple[str, ...]:
        return tuple(options.images)

    def forward(self, outputs, batch, model=None) -> torch.Tensor:
        text = outputs["text_features"].detach()
        rows = text.shape[0]
        sizes = gather_sizes(rows, text.device)
        texts_all = all_gather_no_grad(text.float(), sizes=sizes)
        scale = self.logit_scale()
        if len(self.queue) >= min(texts_all.shape[0], self.queue.size):
            neighbours = all_gather_no_grad(self.queue.nearest(text.float()), sizes=sizes)
            labels = torch.arange(rows, device=text.device) + global_offset(rows, sizes)
            losses = [
                F.cross_entropy(scale * at_least_fp32(outputs["features"][k]) @ neighbours.T, labels)
                for k in self.images
            ]
            loss = sum(losses) / len(losses) * share(rows, sizes)
            self._active = 1.0
        else:  # still filling: no supervision yet, but a graph DDP can reduce through
            loss = 0.0 * scale
            self._active = 0.0
        self.queue.push(texts_all)
        return loss

    def log_metrics(self) -> dict[str, float]:
        return {"queue_filled": float(len(self.queue)), "active": self._active}
