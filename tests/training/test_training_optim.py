"""Optimiser groups, LAMB, the warm-up + cosine schedule and FILIP's square-root LR scaling."""

import math

import pytest
import torch
from torch import nn

from training.config import OptimConfig, ScheduleConfig
from training.optim import build_optimizer, build_schedule, param_groups, peak_lr


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 4)
        self.ln_final = nn.LayerNorm(4)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))


def test_weight_decay_skips_biases_norms_embeddings_and_temperature():
    model = Toy()
    decay, no_decay = param_groups({"m": model}, 0.2)
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(model.proj.weight)]
    assert {id(p) for p in no_decay["params"]} == {
        id(model.token_embedding.weight),
        id(model.proj.bias),
        id(model.ln_final.weight),
        id(model.ln_final.bias),
        id(model.log_scale),
    }


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_optimisers_fit_a_regression(name):
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    opt = build_optimizer({"m": model}, OptimConfig(name=name, lr=0.05, weight_decay=0.0), lr=0.05)
    assert type(opt).__name__ == {"adamw": "AdamW", "lamb": "Lamb"}[name]
    first = None
    for _ in range(200):
        loss = nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first


def test_schedule_warms_up_linearly_then_follows_a_cosine():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_schedule(opt, ScheduleConfig(warmup_steps=10, min_lr_ratio=0.1), steps=110)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))


def test_square_root_lr_scaling_by_global_batch():
    cfg = OptimConfig(lr=1e-3, sqrt_lr_scaling=True, sqrt_reference_batch=256)
    assert peak_lr(cfg, 1024) == pytest.approx(2e-3)
    assert peak_lr(OptimConfig(lr=1e-3), 1024) == pytest.approx(1e-3)
