"""Cross-worker feature exchange for contrastive objectives (open_clip's semantics, any batch sizes).

Each worker computes its loss over its LOCAL rows against the GLOBAL batch ("local loss")
and gathers the other workers' features WITH gradient, so that after data-parallel
gradient averaging the update equals the single-process full-batch gradient (FLAVA
supplement C, "Global vs. local contrastive losses": the loss is back-propagated through
the gathering operation).

Workers may hold different numbers of rows (a last partial batch, a filtered batch): the
row counts are exchanged first (`gather_sizes`: one small collective and one host sync),
every worker pads its rows to the largest count, the padded blocks are gathered, and the
padding is stripped, so the result is exactly the concatenation of every worker's rows in
rank order; gradients reach each owner's real rows only. Row `i` of this worker is row
`global_offset(...) + i` of the global batch (the sum of the smaller ranks' counts, not
`rank * rows`). A caller that needs both the gathered tensors and the offset gathers the
sizes once and passes them (`sizes=`) to both, saving the second exchange.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.distributed.nn as dist_nn


def world() -> tuple[int, int]:
    """(rank, world_size) of the current process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _collective_device() -> torch.device:
    """Where a tensor must live for the default group's collectives (NCCL: this rank's GPU)."""
    if "nccl" in str(dist.get_backend()).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_sizes(rows: int, device: torch.device | None = None) -> list[int]:
    """Every worker's row count in rank order (`[rows]` without a process group).

    One all_gather of a single integer per worker (on `device`, default: the backend's
    device) and one host sync; every worker must call it.
    """
    _, size = world()
    if size == 1:
        return [int(rows)]
    mine = torch.tensor([int(rows)], dtype=torch.long, device=device or _collective_device())
    parts = [torch.empty_like(mine) for _ in range(size)]
    dist.all_gather(parts, mine)
    return [int(p) for p in torch.cat(parts).tolist()]


def global_offset(rows: int, sizes: Sequence[int] | None = None, device: torch.device | None = None) -> int:
    """This worker's first row in the global batch: the sum of the smaller ranks' row counts.

    `sizes` (from `gather_sizes`) avoids the exchange; without it every worker must call this.
    """
    rank, _ = world()
    sizes = gather_sizes(rows, device) if sizes is None else list(sizes)
    if sizes[rank] != rows:
        raise ValueError(f"sizes[{rank}] = {sizes[rank]} but this worker holds {rows} rows")
    return int(sum(sizes[:rank]))


def share(rows: int, sizes: Sequence[int]) -> float:
    """The factor turning this worker's local mean loss into its share of the full-batch mean:
    world * rows / N (exactly 1 with equal sizes), so that data-parallel gradient averaging
    gives the single-process full-batch gradient with unequal per-worker batches too."""
    return len(sizes) * rows / max(1, sum(sizes))


def _checked_sizes(rows: int, sizes: Sequence[int] | None, device: torch.device) -> list[int]:
    rank, size = world()
    sizes = gather_sizes(rows, device) if sizes is None else [int(s) for s in sizes]
    if len(sizes) != size or sizes[rank] != rows:
        raise ValueError(f"sizes {sizes} do not fit world size {size} with {rows} rows on rank {rank}")
    return sizes


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    if x.shape[0] == rows:
        return x.contiguous()
    return torch.cat([x, x.new_zeros(rows - x.shape[0], *x.shape[1:])], dim=0)


def all_gather_with_grad(*tensors: torch.Tensor, sizes: Sequence[int] | None = None) -> tuple[torch.Tensor, ...]:
    """Concatenate each tensor from every worker along dim 0; gradients flow back to each owner.

    All tensors share dim 0 (their row count may differ between workers; `sizes`, from
    `gather_sizes`, skips the count exchange) and travel in ONE autograd collective,
    flattened side by side: with several autograd gathers, ranks could run their backward
    exchanges in different orders and mix them up.
    """
    _, size = world()
    if size == 1:
        return tensors
    rows = tensors[0].shape[0]
    if any(t.shape[0] != rows for t in tensors):
        raise ValueError(f"tensors gathered together need the same rows, got {[t.shape[0] for t in tensors]}")
    sizes = _checked_sizes(rows, sizes, tensors[0].device)
    flat = torch.cat([t.reshape(rows, math.prod(t.shape[1:])) for t in tensors], dim=1)
    with warnings.catch_warnings():
        # deprecated in favour of a private functional API; its autograd semantics are what we need
        warnings.simplefilter("ignore", FutureWarning)
        parts = dist_nn.all_gather(_pad_rows(flat, max(sizes)))
    gathered = torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0)
    out, col = [], 0
    for t in tensors:
        width = math.prod(t.shape[1:])
        out.append(gathered[:, col : col + width].reshape(-1, *t.shape[1:]))
        col += width
    return tuple(out)


def all_gather_no_grad(x: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Concatenate `x` (e.g. masks, detached features) from every worker along dim 0, without gradient.

    Row counts may differ between workers (`sizes` as in `all_gather_with_grad`).
    """
    _, size = world()
    if size == 1:
        return x
    sizes = _checked_sizes(x.shape[0], sizes, x.device)
    sent = x.detach()
    sent = sent.to(torch.uint8) if sent.dtype == torch.bool else sent  # gloo has no bool all_gather
    sent = _pad_rows(sent, max(sizes))
    parts = [torch.empty_like(sent) for _ in range(size)]
    dist.all_gather(parts, sent)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0).to(x.dtype)
