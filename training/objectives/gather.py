"""Cross-worker feature exchange for contrastive objectives (open_clip's semantics).

Each worker computes its loss over its LOCAL rows against the GLOBAL batch ("local loss")
and gathers the other workers' features WITH gradient, so that after data-parallel
gradient averaging the update equals the single-process full-batch gradient.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn as dist_nn


def world() -> tuple[int, int]:
    """(rank, world_size) of the current process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_with_grad(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate each tensor from every worker along dim 0; gradients flow back to each owner.

    All tensors travel in ONE collective (flattened side by side): with several autograd
    gathers, ranks could run their backward exchanges in different orders and mix them up.
    """
    _, size = world()
    if size == 1:
        return tensors
    rows = tensors[0].shape[0]
    flat = torch.cat([t.reshape(rows, -1) for t in tensors], dim=1).contiguous()
    with warnings.catch_warnings():
        # deprecated in favour of a private functional API; its autograd semantics are what we need
        warnings.simplefilter("ignore", FutureWarning)
        gathered = torch.cat(dist_nn.all_gather(flat), dim=0)
    out, col = [], 0
    for t in tensors:
        width = t[0].numel()
        out.append(gathered[:, col : col + width].reshape(-1, *t.shape[1:]))
        col += width
    return tuple(out)


def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (e.g. masks) from every worker along dim 0, without gradient."""
    _, size = world()
    if size == 1:
        return x
    sent = x.to(torch.uint8) if x.dtype == torch.bool else x.contiguous()  # gloo has no bool all_gather
    parts = [torch.empty_like(sent) for _ in range(size)]
    dist.all_gather(parts, sent)
    return torch.cat(parts, dim=0).to(x.dtype)
