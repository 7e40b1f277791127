"""Optimisers and the learning-rate schedule (FILIP Sec. 4.1 and A.3).

Weight decay skips biases, norms, embeddings (token, positional, class) and temperatures.
LAMB follows You et al. 2020 as in cybertronai/pytorch-lamb (Adam step scaled per tensor by
the trust ratio ||w|| / ||step||). The schedule warms up linearly then follows a cosine
down to `min_lr_ratio`; FILIP's square-root scaling sets the peak by global batch size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import OptimConfig, ScheduleConfig

NO_DECAY_NAMES = ("positional_embedding", "class_embedding", "token_embedding", "log_scale", "cls_emb")


def param_groups(modules: dict[str, nn.Module], weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for prefix, module in modules.items():
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


class Lamb(torch.optim.Optimizer):
    """Layer-wise adaptive moments (LAMB) with decoupled weight decay inside the trust ratio."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** state["step"])
                v_hat = v / (1 - beta2 ** state["step"])
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), (w_norm / u_norm).clamp(max=10.0), torch.ones_like(w_norm))
                p.add_(update.mul_(trust), alpha=-group["lr"])
        return loss


def build_optimizer(modules: dict[str, nn.Module], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    groups = param_groups(modules, cfg.weight_decay)
    if cfg.name == "lamb":
        return Lamb(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)


def build_schedule(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
