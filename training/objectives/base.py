"""What an objective is: a small nn.Module registered by name, weighted in YAML.

An objective declares the model outputs it `needs` (e.g. "image_tokens") and the batch
members it reads (`batch_keys`), returns its loss, and may hold state (temperature,
momentum encoders, queues): everything in its `state_dict` is checkpointed and restored.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from catalog.config import Config
from catalog.registry import Registry


class Objective(nn.Module):
    """Base class: a learnable temperature `log_scale` (init 1/T, clamped) and the interface."""

    Options: ClassVar[type[Config]]
    needs: ClassVar[frozenset[str]] = frozenset()
    batch_keys: ClassVar[frozenset[str]] = frozenset({"image", "text"})

    def __init__(self, init_temperature: float, max_logit_scale: float) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_logit_scale = max_logit_scale

    def logit_scale(self) -> torch.Tensor:
        """exp(log_scale), clamped at the maximum (no gradient pushes it further)."""
        return self.log_scale.exp().clamp(max=self.max_logit_scale)

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Features/scores from AMP back to fp32 (fp64 stays fp64) before a softmax."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


OBJECTIVES: Registry[type[Objective]] = Registry("objective")
