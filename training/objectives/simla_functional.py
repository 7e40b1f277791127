"""Pure building blocks of SIMLA's objectives (no state, no registration).

- `sample_itm_negatives`: in-batch hard negatives for image-text matching, drawn with
  probability softmax(similarity) over the other items of the batch (SIMLA Sec. 2.2
  "Image-Text Matching", Eq. 5, "following ALBEF"). ALBEF draws them row by row with
  `torch.multinomial` and `.item()` (2·B host syncs a step) and crashes on NaN/inf rows;
  here the whole batch is one Gumbel-max draw that is valid for any input.
- `psl_targets`: the multi-hot pseudo-labels of concept-level alignment, the tokens at the
  k positions the multimodal [CLS] attends to most (SIMLA Sec. 2.4, y^PSL of Eq. 8 and 9;
  Appendix 3 "Pseudolabel Extraction", k = 4). Padding and the given special ids (and stop
  words, if passed) are never labels; ALBEF-style code excludes only [CLS].
- `momentum_update`: the momentum (EMA) model of Sec. 2.2 and 2.4, coefficient 0.995
  (Sec. 3, "Implementation Details").
- `distill_alpha`: the distillation weight α of Eq. 3, 7 and 9, ramped linearly from 0 to
  0.4 over the first epoch (Sec. 3).

Randomness comes from an optional `torch.Generator` so a seed reproduces a draw exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from training.objectives.base import at_least_fp32


def _negative_logits(sim: torch.Tensor) -> torch.Tensor:
    """Sanitised log-weights [..., B, B] of the negatives: -inf on the diagonal, finite somewhere else in every row.

    Limits of softmax: NaN and -inf weigh nothing; a row with +inf entries puts all its mass
    on them, uniformly; a row with no finite weight left off the diagonal is uniform over
    the other items. Shifted so the row maximum is 0 (exact for ±1e6-sized scores). Works
    in place on fp32/fp64 `sim`: pass a tensor of your own (the sampler's stack is one).
    """
    x = at_least_fp32(sim.detach())
    pos_inf = x == float("inf")
    pos_inf.diagonal(dim1=-2, dim2=-1).fill_(False)
    x.nan_to_num_(nan=float("-inf"), posinf=float("-inf"), neginf=float("-inf"))
    x.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    x = torch.where(pos_inf.any(-1, keepdim=True), torch.where(pos_inf, 0.0, float("-inf")).to(x.dtype), x)
    row_max = x.amax(-1, keepdim=True)
    degenerate = row_max == float("-inf")
    x.sub_(row_max.masked_fill_(degenerate, 0.0)).masked_fill_(degenerate, 0.0)
    x.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    return x


def sample_itm_negatives(
    sim_i2t: torch.Tensor, sim_t2i: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One hard negative per item of the batch for ITM: (neg_text_idx, neg_image_idx), [B] long each.

    `sim_i2t` [B, B] are image-to-text and `sim_t2i` [B, B] text-to-image scores (usually
    `sim_t2i == sim_i2t.T`; logits, e.g. similarity / τ). Only square inputs are supported:
    image i and text i are a pair, and the batch is local (gathering is the caller's job).
    `neg_text_idx[i]` is drawn with probability ∝ exp(sim_i2t[i, j]) over j ≠ i, and
    `neg_image_idx[i]` likewise from `sim_t2i[i]`; neither is ever i.

    Any input gives valid indices (fp16/bf16 are computed in fp32): NaN and -inf entries are
    never drawn, the +inf entries of a row share all its mass, and a row with nothing finite
    left off the diagonal falls back to uniform over the other items. Both draws are one
    Gumbel-max (argmax of logits + Gumbel noise) over a [2, B, B] tensor: no per-row loop, no
    host sync. Deterministic for a given `generator` state (one draw of shape [2, B, B]); the
    generator must live on the inputs' device (or be None: the global RNG of that device).
    """
    if sim_i2t.ndim != 2 or sim_i2t.shape[0] != sim_i2t.shape[1]:
        raise ValueError(f"sample_itm_negatives supports square [B, B] similarities only, got {tuple(sim_i2t.shape)}")
    if sim_t2i.shape != sim_i2t.shape:
        raise ValueError(f"sim_t2i must have the shape of sim_i2t {tuple(sim_i2t.shape)}, got {tuple(sim_t2i.shape)}")
    if sim_i2t.shape[0] < 2:
        raise ValueError(f"in-batch ITM negatives need a batch of at least 2, got {sim_i2t.shape[0]}")
    logits = _negative_logits(torch.stack([sim_i2t, sim_t2i.to(sim_i2t.device)]))
    gumbel = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    tiny = torch.finfo(logits.dtype).tiny
    gumbel.clamp_min_(tiny).log_().neg_().log_().neg_()  # -log(-log U): finite for U in [tiny, 1)
    neg_text_idx, neg_image_idx = logits.add_(gumbel).argmax(-1)
    return neg_text_idx, neg_image_idx


def psl_targets(
    cls_attention: torch.Tensor,
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    k: int,
    vocab_size: int,
    special_ids: Iterable[int],
) -> torch.Tensor:
    """Multi-hot pseudo-labels y^PSL [B, vocab_size] (float32) from the multimodal [CLS] attention.

    `cls_attention` [B, L] is row 0 of the last multimodal self-attention map (e.g. averaged
    over heads); `token_ids` and `attention_mask` are [B, L]. A position is eligible when it
    is real (`attention_mask` 1) and its id is not in `special_ids` ([CLS], [SEP], padding,
    [MASK], optionally stop words). The result is 1 at the ids of the (at most) k eligible
    positions with the highest attention and 0 elsewhere: an id at two of them is one label,
    a row with fewer than k eligible positions labels all of them, one with none is all zero.
    NaN attention ranks last among the eligible positions. Ids must lie in [0, vocab_size).
    """
    if cls_attention.ndim != 2 or cls_attention.shape != token_ids.shape or attention_mask.shape != token_ids.shape:
        raise ValueError(
            "cls_attention, token_ids and attention_mask must all be [B, L], got "
            f"{tuple(cls_attention.shape)}, {tuple(token_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    device = token_ids.device
    specials = torch.tensor(sorted({int(i) for i in special_ids}), dtype=token_ids.dtype, device=device)
    eligible = attention_mask.to(device).bool() & ~torch.isin(token_ids, specials)
    att = at_least_fp32(cls_attention.detach().to(device))
    lowest = torch.finfo(att.dtype).min
    scores = att.nan_to_num(nan=lowest, posinf=torch.finfo(att.dtype).max, neginf=lowest)
    scores = scores.masked_fill(~eligible, float("-inf"))  # every eligible position ranks above every other
    positions = scores.topk(min(k, scores.shape[1]), dim=1).indices
    chosen = eligible.gather(1, positions)
    ids = torch.where(chosen, token_ids.gather(1, positions), vocab_size)  # the extra column swallows the rest
    targets = torch.zeros(token_ids.shape[0], vocab_size + 1, dtype=torch.float32, device=device)
    return targets.scatter_(1, ids.long(), 1.0)[:, :vocab_size]


@torch.no_grad()
def momentum_update(model: nn.Module, ema_model: nn.Module, m: float) -> None:
    """ema ← m·ema + (1 - m)·model for every parameter and floating buffer, in place.

    Parameters and buffers are matched by name, in order; a different name, count or shape
    raises ValueError. Floating buffers (e.g. BatchNorm running statistics) follow the same
    EMA, as the whole state does in timm's ModelEmaV2, so the momentum model's statistics
    stay consistent with its averaged weights; other buffers (counters such as
    `num_batches_tracked`) are copied as they are. Give the encoder pairs, not a module that
    owns feature queues: their float buffers would be averaged too. One
    `torch._foreach_lerp_` per kind (ema + (1 - m)(model - ema)); no tensor is replaced and
    nothing is recorded for autograd.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {m}")
    params = _matched(model.named_parameters(), ema_model.named_parameters(), "parameter")
    buffers = _matched(model.named_buffers(), ema_model.named_buffers(), "buffer")
    floating = [(src, dst) for src, dst in params + buffers if dst.is_floating_point() or dst.is_complex()]
    if floating:
        ema_tensors, model_tensors = (list(t) for t in zip(*((dst, src) for src, dst in floating)))
        torch._foreach_lerp_(ema_tensors, model_tensors, 1.0 - m)
    for src, dst in buffers:
        if not (dst.is_floating_point() or dst.is_complex()):
            dst.copy_(src)


def _matched(
    source: Iterable[tuple[str, torch.Tensor]], target: Iterable[tuple[str, torch.Tensor]], kind: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs (model tensor, ema tensor) by name and order; ValueError on any mismatch."""
    source, target = list(source), list(target)
    if len(source) != len(target):
        raise ValueError(f"model has {len(source)} {kind}s but ema_model has {len(target)}")
    for (name, src), (ema_name, dst) in zip(source, target):
        if name != ema_name or src.shape != dst.shape:
            raise ValueError(
                f"{kind} mismatch: model {name} {tuple(src.shape)} vs ema_model {ema_name} {tuple(dst.shape)}"
            )
    return [(src, dst) for (_, src), (_, dst) in zip(source, target)]


def distill_alpha(step: float, ramp_steps: float, max_alpha: float) -> float:
    """α at `step`: max_alpha · min(1, step / ramp_steps), 0 before step 0; `ramp_steps` <= 0 means no ramp."""
    if ramp_steps <= 0:
        return float(max_alpha)
    return float(max_alpha) * min(1.0, max(0.0, step / ramp_steps))
