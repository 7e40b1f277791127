"""DeCLIP's image self-supervision: SimSiam on two image views (DeCLIP §3.3 "Self-Supervision
within each modality", Fig. 5(a), Algorithm 1 IMAGE-SS-LOSS; appendix B "Details of SS").

Both views (default the precomputed global crops `g0.jpg`, `g1.jpg`) go through the image
encoder (shared weights); a projector (3 layers, BatchNorm after each, hidden and output
1024) and a predictor (2 layers, hidden 512, output 1024) follow, and the loss is the
negative cosine between each view's prediction and the other view's stop-gradient
projection (Chen & He 2021). BatchNorm is per worker, as in DeCLIP's code. The widths
default to DeCLIP's ratios to its 512-d embedding: projector 2x the embedding (1024),
predictor hidden 1x (512), so a small model does not carry a head larger than itself.

Collapse is not silent here: every log step reports `collapse/declip_ss_image`, the std
over the batch of the L2-normalised projector output averaged over dimensions, about
1/sqrt(d) when healthy and near 0 when every image maps to the same vector, and
`collapse_ratio/declip_ss_image` (that std times sqrt(d): ~1 healthy, -> 0 collapsed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.functional import simsiam_loss


class SimSiamOptions(ObjectiveOptions):
    views: tuple[str, str] = ("g0.jpg", "g1.jpg")  # batch members (or `image`, the model's input)
    projector_dim: int | None = None  # default 2 x embed_dim (DeCLIP: 1024 for 512)
    predictor_hidden: int | None = None  # default embed_dim (DeCLIP: 512)


def projector(dim_in: int, dim: int) -> nn.Sequential:
    """3 linear layers, BatchNorm after each, ReLU between (SimSiam; DeCLIP appendix B)."""
    return nn.Sequential(
        nn.Linear(dim_in, dim, bias=False),
        nn.BatchNorm1d(dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim, bias=False),
        nn.BatchNorm1d(dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim, bias=False),
        nn.BatchNorm1d(dim, affine=False),
    )


def predictor(dim: int, hidden: int) -> nn.Sequential:
    """2 layers with a bottleneck (SimSiam; DeCLIP appendix B: hidden 512, output 1024)."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
    )


@OBJECTIVES.register("declip_ss_image")
class SimSiamObjective(Objective):
    Options = SimSiamOptions

    def __init__(self, options: SimSiamOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__()
        self.views = options.views
        dim = options.projector_dim or 2 * info.embed_dim
        self.projector = projector(info.embed_dim, dim)
        self.predictor = predictor(dim, options.predictor_hidden or info.embed_dim)
        self._collapse: float | None = None

    @classmethod
    def members(cls, options: SimSiamOptions) -> tuple[str, ...]:
        return tuple(v for v in options.views if v != "image")

    @classmethod
    def encode_images(cls, options: SimSiamOptions) -> tuple[str, ...]:
        return tuple(options.views)

    def forward(self, outputs, batch, model=None) -> torch.Tensor:
        # the encoder's output before normalisation, as DeCLIP's projector reads it
        x1, x2 = (at_least_fp32(outputs["pooled"][v]) for v in self.views)
        z1, z2 = self.projector(x1), self.projector(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        with torch.no_grad():
            self._collapse = collapse_std(torch.cat([z1, z2])).item()
        return simsiam_loss(p1, p2, z1, z2)

    def log_metrics(self) -> dict[str, float]:
        if self._collapse is None:
            return {}
        dim = self.projector[-1].num_features
        return {"collapse": self._collapse, "collapse_ratio": self._collapse * math.sqrt(dim)}


def collapse_std(z: torch.Tensor) -> torch.Tensor:
    """Std over the batch of L2-normalised rows, averaged over dimensions (SimSiam §4.1)."""
    return torch.nn.functional.normalize(z.float(), dim=1).std(dim=0).mean()
