"""A FIFO feature queue for nearest-neighbour supervision (DeCLIP Sec. 3.3 "Nearest-Neighbor
Supervision", Fig. 6; Appendix A pseudo code: NEAREST-NEIGHBOR and FIFO-UPDATE; 64K entries)
and for the momentum features SIMLA's contrastive loss uses as negatives (SIMLA Sec. 2.2,
MoCo-style queues of M = 65,536). A push takes any number of rows: the pointer wraps
modulo the size (ALBEF/BLIP assert `size % global_batch == 0` and stop mid-run when a
batch is smaller, BLIP #101).

Contents, write pointer and fill count are buffers, so they are in the owner's
`state_dict` (checkpointed and restored: DeCLIP's bank is a plain attribute, random again
after a resume) and move with `.to(device)`. The queue stores what it is given: to hold the
whole global batch on every worker (DeCLIP enqueues each GPU's own features only), the
objective gathers before `push`, and then every worker's queue stays identical.

Only the filled slots take part in `nearest`: an unfilled (zero) slot never wins, even
against negative similarities. `filled` is mirrored as a Python int (updated by `push` and
by loading a state dict), so neither `push` nor `nearest` waits for the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureQueue(nn.Module):
    """`size` rows of dimension `dim`, stored L2-normalised in `dtype`, first in first out."""

    features: torch.Tensor
    ptr: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, dim: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got {size} and {dim}")
        self.size, self.dim = int(size), int(dim)
        self.register_buffer("features", torch.zeros(self.size, self.dim, dtype=dtype))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # the next slot written
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # filled slots
        self._filled = 0

    @property
    def filled(self) -> int:
        """How many slots hold a pushed row (at most `size`)."""
        return self._filled

    def __len__(self) -> int:
        return self._filled

    def __bool__(self) -> bool:  # a module is truthy even while the queue is empty
        return True

    @torch.no_grad()
    def push(self, features: torch.Tensor) -> None:
        """Append rows [n, dim] (detached, normalised), overwriting the oldest; n > size keeps the newest."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"push expects [n, {self.dim}] features, got {tuple(features.shape)}")
        rows = features.detach()[-self.size :]
        n = rows.shape[0]
        if n == 0:
            return
        rows = F.normalize(rows.to(device=self.features.device, dtype=torch.promote_types(rows.dtype, torch.float32)))
        slots = (self.ptr + torch.arange(n, device=self.features.device)) % self.size
        self.features.index_copy_(0, slots, rows.to(self.features.dtype))
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_((self.count + n).clamp(max=self.size))
        self._filled = min(self._filled + n, self.size)

    def rows(self) -> torch.Tensor:
        """The filled rows [filled, dim] (slot order, not age order; no copy): e.g. the negatives
        of a contrastive loss against the queue (SIMLA's ITC, Eq. 1-2)."""
        return self.features[: self._filled]

    @torch.no_grad()
    def nearest(self, features: torch.Tensor) -> torch.Tensor:
        """The stored row [m, dim] of highest cosine similarity to each query [m, dim], filled slots only."""
        if self._filled == 0:
            raise RuntimeError("FeatureQueue.nearest on an empty queue: push features first")
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"nearest expects [m, {self.dim}] queries, got {tuple(features.shape)}")
        dtype = torch.promote_types(torch.promote_types(features.dtype, self.features.dtype), torch.float32)
        stored = self.features[: self._filled]  # before the first wrap the filled slots are 0..filled-1
        queries = F.normalize(features.detach().to(device=stored.device, dtype=dtype), dim=-1)
        index = (queries @ stored.to(dtype).T).argmax(dim=1)
        return stored[index]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._filled = int(self.count)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, dtype={self.features.dtype}"
