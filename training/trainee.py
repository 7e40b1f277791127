"""The trained unit: the dual encoder plus its weighted objectives (one module, so DDP
averages every gradient, temperatures included, and one state_dict holds it all).

The model encodes the batch's `image` and `text`; every objective gets the model outputs,
the whole batch (the members it declared included, see `training.objectives.base`) and
the model, to encode the views it reads.
"""

from __future__ import annotations

import torch
from torch import nn

from training.config import TrainConfig
from training.data import BatchSpec, batch_spec
from training.model import DualEncoder, build_model
from training.objectives import OBJECTIVES, Objective

AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_objectives(cfg: TrainConfig) -> dict[str, Objective]:
    """Objectives named in the config (names and options were validated with the config)."""
    return {
        name: OBJECTIVES.get(name)(cfg.objective_options(name), amp_dtype=AMP_DTYPES[cfg.precision])
        for name in cfg.objectives
    }


class Trainee(nn.Module):
    def __init__(self, model: DualEncoder, objectives: dict[str, Objective], weights: dict[str, float]) -> None:
        super().__init__()
        self.model = model
        self.objectives = nn.ModuleDict(objectives)
        self.weights = dict(weights)
        self.needs = frozenset().union(*(o.needs for o in objectives.values()))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        outputs = self.model(batch["image"], batch["text"], batch["text_mask"], needs=self.needs)
        losses = {name: obj(outputs, batch, self.model) for name, obj in self.objectives.items()}
        total = sum(self.weights[name] * loss for name, loss in losses.items())
        return total, losses


def build_trainee(cfg: TrainConfig) -> Trainee:
    model = build_model(cfg.model.preset, cfg.model.embed_dim, cfg.model.mask_ratio, cfg.model.grad_checkpointing)
    return Trainee(model, build_objectives(cfg), {n: s.weight for n, s in cfg.objectives.items()})


def run_batch_spec(cfg: TrainConfig, image_size: int) -> BatchSpec:
    """What the run's batches carry: the model inputs and every member its objectives declare."""
    return batch_spec(image_size, cfg.data.caption_from, cfg.objective_members(), cfg.data.image_sizes)
