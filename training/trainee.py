"""The trained unit: the dual encoder plus its weighted objectives (one module, so DDP
averages every gradient, temperatures included, and one state_dict holds it all)."""

from __future__ import annotations

import torch
from torch import nn

from catalog.config import ConfigError, validate
from training.config import TrainConfig
from training.data import BatchSpec
from training.model import DualEncoder, build_model
from training.objectives import OBJECTIVES, Objective

AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_objectives(cfg: TrainConfig) -> dict[str, Objective]:
    """Objectives named in the config, options validated against each one's `Options`."""
    built = {}
    for name, spec in cfg.objectives.items():
        try:
            cls = OBJECTIVES.get(name)
        except KeyError as exc:
            raise ConfigError(f"key 'objectives.{name}': {exc.args[0]}") from None
        options = validate(cls.Options, spec.options, source=f"objectives.{name}.options")
        built[name] = cls(options, amp_dtype=AMP_DTYPES[cfg.precision])
    return built


class Trainee(nn.Module):
    def __init__(self, model: DualEncoder, objectives: dict[str, Objective], weights: dict[str, float]) -> None:
        super().__init__()
        self.model = model
        self.objectives = nn.ModuleDict(objectives)
        self.weights = dict(weights)
        self.needs = frozenset().union(*(o.needs for o in objectives.values()))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        outputs = self.model(batch["image"], batch["text"], batch["text_mask"], needs=self.needs)
        losses = {name: obj(outputs, batch) for name, obj in self.objectives.items()}
        total = sum(self.weights[name] * loss for name, loss in losses.items())
        return total, losses


def build_trainee(cfg: TrainConfig) -> Trainee:
    model = build_model(cfg.model.preset, cfg.model.embed_dim, cfg.model.mask_ratio, cfg.model.grad_checkpointing)
    return Trainee(model, build_objectives(cfg), {n: s.weight for n, s in cfg.objectives.items()})


def batch_spec(cfg: TrainConfig, image_size: int) -> BatchSpec:
    d = cfg.data
    return BatchSpec(image_size=image_size, caption_from=tuple(d.caption_from), eda_views=d.eda_views,
                     global_views=d.global_views, local_views=d.local_views, local_size=d.local_size)
