"""Pure building blocks of the self-supervised objectives (no state, no registration).

- `simsiam_loss`: SimSiam's symmetric negative cosine with stop-gradient, DeCLIP's image
  self-supervision (DeCLIP Sec. 3.3 "Self-Supervision within each modality", Fig. 5(a);
  Appendix A pseudo code; Appendix B "Details of SS").
- `info_nce`: the symmetric InfoNCE of CLIP (DeCLIP Eq. 1) on rows it normalises itself,
  for the multi-view and nearest-neighbour losses (DeCLIP Sec. 3.3 "Multi-View
  Supervision", "Nearest-Neighbor Supervision").
- `mask_tokens` / `mlm_loss`: BERT masking, 15% of the tokens, 80% `<mask>`, 10% random,
  10% unchanged (DeCLIP Sec. 3.3, Fig. 5(b) and Appendix B "Details of SS").
- `block_mask`: BEiT's blockwise patch masking (BEiT Sec. 2.5) as FLAVA uses it for masked
  image modelling, about 40% of the patches (FLAVA supplement A.1: 75 of 196 patches).

Randomness comes from an optional `torch.Generator` so a seed reproduces a mask exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from training.objectives.base import at_least_fp32

IGNORE_INDEX = -100  # `labels` value of the positions an MLM loss ignores (PyTorch's cross-entropy default)


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """-(cos(p1, sg(z2)) + cos(p2, sg(z1))) / 2, the cosine per row, averaged over the batch.

    `p*` are the predictor outputs, `z*` the projector outputs of the two views [B, d];
    no gradient reaches `z1`/`z2` through this loss (stop-gradient). Computed in fp32 or
    higher. Its minimum is -1.
    """
    p1, p2 = at_least_fp32(p1), at_least_fp32(p2)
    z1, z2 = at_least_fp32(z1.detach()), at_least_fp32(z2.detach())
    return -(F.cosine_similarity(p1, z2, dim=-1).mean() + F.cosine_similarity(p2, z1, dim=-1).mean()) / 2


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE between rows of `a` and `b` [B, d] (row i of `a` matches row i of `b`).

    Rows are L2-normalised here (fp32 or higher); the value equals
    `training.objectives.clip.clip_loss` on normalised inputs. Local to the tensors given:
    gathering across workers is the caller's job.
    """
    a, b = F.normalize(at_least_fp32(a), dim=-1), F.normalize(at_least_fp32(b), dim=-1)
    logits = logit_scale * a @ b.T
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def mask_tokens(
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of token ids [B, L]: returns (input_ids, labels), both [B, L] long.

    Each maskable token (real: `attention_mask` True, and not one of `special_ids`) is
    selected independently with probability `prob`. A selected token becomes `mask_id`
    with probability 0.8, a uniformly random id in [0, vocab_size) that is neither special
    nor `mask_id` with 0.1, and stays unchanged with 0.1. `labels` holds the original id at
    the selected positions and `IGNORE_INDEX` (-100) everywhere else; padded and special
    positions never change.

    Like BERT, nothing forces a selection: a short caption may have none, and so, rarely,
    may a whole batch (`labels` all -100). Use `mlm_loss`, which returns 0 with gradient
    then instead of the NaN of a mean over no tokens.

    Deterministic for a given `generator` state (three draws of shape [B, L], always the
    same whatever the input); the generator must live on the tensors' device (or be None:
    the global RNG of that device).
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    device = token_ids.device
    excluded = sorted({int(i) for i in special_ids} | {int(mask_id)})
    excluded = [i for i in excluded if 0 <= i < vocab_size]
    if vocab_size - len(excluded) < 1:
        raise ValueError(f"no id in [0, {vocab_size}) is left for random replacement")
    specials = torch.tensor(sorted({int(i) for i in special_ids}), dtype=token_ids.dtype, device=device)
    maskable = attention_mask.to(device=device, dtype=torch.bool) & ~torch.isin(token_ids, specials)

    shape = token_ids.shape
    select = torch.rand(shape, generator=generator, device=device) < prob
    action = torch.rand(shape, generator=generator, device=device)
    # uniform over the allowed ids: draw in [0, V - K) and step over the K excluded ids, ascending
    random_ids = torch.randint(0, vocab_size - len(excluded), shape, generator=generator, device=device)
    for e in excluded:
        random_ids = random_ids + (random_ids >= e).to(random_ids.dtype)

    selected = maskable & select
    input_ids = token_ids.clone()
    input_ids = torch.where(selected & (action < 0.8), torch.full_like(token_ids, mask_id), input_ids)
    input_ids = torch.where(selected & (action >= 0.8) & (action < 0.9), random_ids.to(token_ids.dtype), input_ids)
    labels = torch.where(selected, token_ids, torch.full_like(token_ids, IGNORE_INDEX))
    return input_ids, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the selected positions (`labels` != -100), averaged over them.

    logits [..., V], labels [...]. With no selected position the result is 0 and still
    connected to `logits` (gradient zero), so a data-parallel step does not stall on
    parameters without gradient and no NaN appears.
    """
    logits = at_least_fp32(logits).reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    count = (labels != IGNORE_INDEX).sum()
    return total / count.clamp(min=1).to(total.dtype)


def distilled_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None, alpha: float = 0.0
) -> torch.Tensor:
    """Mean over rows of H(t, softmax(logits)) with t = (1 - α)·one_hot(targets) + α·softmax(teacher_logits):
    momentum distillation (ALBEF; SIMLA Eq. 3, 7), which equals (1 - α)·CE + α·H(teacher, student).

    `logits`, `teacher_logits` [n, V]; `targets` [n] class indices. α = 0 or no teacher is plain
    cross-entropy. In fp32 or higher; with no row the result is 0, still connected to `logits`.
    """
    logits = at_least_fp32(logits)
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    target = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    if teacher_logits is not None and alpha > 0:
        target = (1 - alpha) * target + alpha * at_least_fp32(teacher_logits.detach()).softmax(dim=1)
    return -(F.log_softmax(logits, dim=1) * target).sum(dim=1).mean()


def block_mask(
    batch: int,
    grid: int,
    ratio: float = 0.4,
    generator: torch.Generator | None = None,
    min_block: int = 4,
    max_aspect: float = 3.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """BEiT blockwise masking: bool [batch, grid*grid] (True = masked), patches in row-major order.

    Per sample, random rectangles of `min_block` to (remaining target) patches, aspect
    ratio log-uniform in [1/max_aspect, max_aspect], are added until about `ratio` of the
    patches are masked (BEiT Sec. 2.5, 10 placement attempts per block); the count is then
    made exact, round(ratio * grid * grid) in every sample, by adding random single patches
    (or removing random masked ones), so callers can gather fixed-size tensors.

    Seeded: one draw from `generator` (CPU or CUDA, or the global CPU RNG when None)
    seeds the CPU-side block placement, so the same generator state gives the same masks.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if grid < 1 or min_block < 1 or max_aspect < 1.0:
        raise ValueError(f"need grid >= 1, min_block >= 1, max_aspect >= 1; got {grid}, {min_block}, {max_aspect}")
    n = grid * grid
    target = round(ratio * n)
    seed_device = generator.device if generator is not None else torch.device("cpu")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=seed_device).item())
    rng = random.Random(seed)
    rows = [_block_mask_one(rng, grid, target, min_block, max_aspect) for _ in range(batch)]
    out = torch.tensor(rows, dtype=torch.bool) if batch else torch.zeros(0, n, dtype=torch.bool)
    return out.to(device) if device is not None else out


def _block_mask_one(rng: random.Random, grid: int, target: int, min_block: int, max_aspect: float) -> list[bool]:
    mask = [[False] * grid for _ in range(grid)]
    count = 0
    log_aspect = (-math.log(max_aspect), math.log(max_aspect))
    while count < target:
        budget = target - count
        added = 0
        for _ in range(10):  # BEiT: up to 10 tries to place one block
            area = rng.uniform(min(min_block, budget), budget)
            aspect = math.exp(rng.uniform(*log_aspect))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if not (1 <= h <= grid and 1 <= w <= grid):
                continue
            top, left = rng.randint(0, grid - h), rng.randint(0, grid - w)
            new = sum(not mask[i][j] for i in range(top, top + h) for j in range(left, left + w))
            if 0 < new <= budget:
                for i in range(top, top + h):
                    for j in range(left, left + w):
                        mask[i][j] = True
                added = new
                break
        if added == 0:
            break
        count += added
    flat = [m for row in mask for m in row]
    if count < target:  # BEiT stops short when no block fits: top up with single patches
        for k in rng.sample([k for k, m in enumerate(flat) if not m], target - count):
            flat[k] = True
    elif count > target:
        for k in rng.sample([k for k, m in enumerate(flat) if m], count - target):
            flat[k] = False
    return flat
