"""Ranking metrics with several positives per query, and top-k accuracy; pure tensor functions.

Retrieval (FILIP §4.2, SIMLA §4.3: R@1/5/10 both ways): an image query is right at K when
ANY of its captions is among the K best texts, a caption query when its image is among
the K best images. CLIP_benchmark's retrieval numbers disagreed with OpenAI's because of
several captions per image (its issues #7, #48): here the positives of every query are a
boolean matrix, so five captions per image are scored exactly.

Ties are pessimistic: a negative that scores equal to the best positive counts as ranked
before it. A collapsed model (every score equal) therefore scores R@K = K / candidates
(no better than guessing), not 100%, and the result never depends on the order of the
candidates. Chance is the expected R@K of a random ranking.
"""

from __future__ import annotations

import math

import torch


def best_positive_rank(scores: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """0-based rank of each query's best positive: how many negatives score >= it.

    scores [Q, C] float, positives [Q, C] bool (each row has at least one True)."""
    if not bool(positives.any(dim=1).all()):
        raise ValueError("every query needs at least one positive candidate")
    best = scores.masked_fill(~positives, float("-inf")).amax(dim=1, keepdim=True)
    return ((scores >= best) & ~positives).sum(dim=1)


def recall_at(scores: torch.Tensor, positives: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """R@K for each K: the share of queries whose best positive ranks within the first K."""
    rank = best_positive_rank(scores, positives)
    return {k: (rank < k).float().mean().item() for k in ks}


def chance_recall(positives: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """Expected R@K of a uniformly random ranking: 1 - C(n-p, K) / C(n, K), averaged over queries."""
    n = positives.shape[1]
    counts = positives.sum(dim=1).tolist()
    out = {}
    for k in ks:
        k_eff = min(k, n)
        miss = [math.comb(n - p, k_eff) / math.comb(n, k_eff) for p in counts]
        out[k] = 1.0 - sum(miss) / len(miss)
    return out


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    """Classification top-K accuracy (scores [N, C], labels [N] long), ties pessimistic as above."""
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[torch.arange(len(labels)), labels] = True
    return recall_at(scores, positives, ks)


def chance_topk(num_classes: int, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    return {k: min(k, num_classes) / num_classes for k in ks}
