"""Optimisers and the learning-rate schedule (FILIP Sec. 4.1 and A.3).

Weight decay skips biases, norms, embeddings (token, positional, class) and temperatures.
LAMB (You et al. 2020; FILIP trains with it) is timm's implementation (timm comes with
open_clip). The schedule warms up linearly then follows a cosine
down to `min_lr_ratio`; FILIP's square-root scaling sets the peak by global batch size.
"""

from __future__ import annotations

import math

import torch
from timm.optim import Lamb
from torch import nn

from training.config import OptimConfig, ScheduleConfig

NO_DECAY_NAMES = ("positional_embedding", "class_embedding", "token_embedding", "log_scale", "cls_emb")


def param_groups(modules: dict[str, nn.Module], weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in modules.values():
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if p.ndim < 2 or any(n in name for n in NO_DECAY_NAMES) or "ln_" in name or "norm" in name:
                no_decay.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def peak_lr(cfg: OptimConfig, global_batch: int) -> float:
    if cfg.sqrt_lr_scaling:
        return cfg.lr * math.sqrt(global_batch / cfg.sqrt_reference_batch)
    return cfg.lr


def build_optimizer(modules: dict[str, nn.Module], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    groups = param_groups(modules, cfg.weight_decay)
    if cfg.name == "lamb":
        return Lamb(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
