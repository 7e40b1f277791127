"""How an image and a text are scored against each other: cosine of global features, or
FILIP's token-wise late interaction (FILIP §3.1.1, Eq. 4-5) re-scoring the top candidates.

Scorers are registered by name (`SCORERS`), called as `scorer(images, texts, k, model)` and
chosen by `eval.tasks.retrieval.scorer` (`auto`: `itm` for a single-stream model, `late`
for a model trained with the `filip` objective, else `cosine`). `itm` is ALBEF's and SIMLA's
retrieval (SIMLA §4.3, ALBEF's `k_test` = 256): every pair ranked by the ITC cosine, each
query's top `k` candidates re-scored by the multimodal encoder's ITM head (log-odds of
"matched"), the others kept below in cosine order.

Late interaction over all N x M pairs costs N*M*n*m*d multiply-adds (n, m tokens): on a
1,000-image x 5,000-caption set of a ViT-B/16 (196 patches, 77 tokens, d=512) that is
3.9e15, so the late scorer first ranks every pair by global cosine (N*M*d), keeps each
query's top `k` candidates and re-scores only those (N*k*n*m*d: k=32 is 156x less work on
that set). Candidates outside a query's top k keep their cosine order, ranked after the
re-scored ones. With k >= candidates the result is the exact full late-interaction ranking.

The token-wise prompt ensemble (FILIP §3.1.2): several templates of one class cannot be
averaged into one token matrix (tokens of different templates do not correspond by
position, and averaging position by position mixes padding into the mean: the public
DeCLIP-repo ensemble does so), so the class score is the mean over templates of the
image-to-text late-interaction similarity, each template's padding excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from catalog.registry import Registry
from training.objectives.filip import late_interaction


@dataclass
class Encoded:
    """Embeddings of a list of images or texts: L2-normalised global features [N, d]; and,
    for late interaction, L2-normalised tokens [N, n, d] with a bool mask (True = real)."""

    features: torch.Tensor
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    ids: torch.Tensor | None = None  # texts: the token ids (for word-level drawings)


SCORERS: Registry = Registry("retrieval scorer")


def trimmed(e: Encoded) -> Encoded:
    """The same embeddings without the token positions that are padding in every row (exact:
    padding is masked out of every score), so a batch of short captions costs its length."""
    keep = int(e.mask.any(0).nonzero().max()) + 1 if e.mask is not None and e.mask.any() else 0
    if e.tokens is None or keep == e.tokens.shape[1]:
        return e
    return Encoded(e.features, e.tokens[:, :keep], e.mask[:, :keep], None if e.ids is None else e.ids[:, :keep])


def _top_candidates(global_scores: torch.Tensor, k: int) -> torch.Tensor:
    return global_scores.topk(min(k, global_scores.shape[1]), dim=1).indices


def _rescored(global_scores: torch.Tensor, candidates: torch.Tensor, late: torch.Tensor) -> torch.Tensor:
    """Scores where each row's candidates carry their late score, lifted above every other
    candidate (which keep their global order below)."""
    lift = global_scores.max() - late.min() + 1.0  # every other candidate ends below the lowest late score
    out = global_scores.clone() - lift
    out.scatter_(1, candidates, late)
    return out


@SCORERS.register("cosine")
def cosine(images: Encoded, texts: Encoded, k: int = 0, model=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image->text scores [N, M], text->image scores [M, N]) by global cosine."""
    s = images.features @ texts.features.T
    return s, s.T


@SCORERS.register("late")
def late(images: Encoded, texts: Encoded, k: int = 32, model=None) -> tuple[torch.Tensor, torch.Tensor]:
    """FILIP late interaction on each query's top-k candidates by cosine (see the module doc)."""
    if images.tokens is None or texts.tokens is None:
        raise ValueError("the late-interaction scorer needs token embeddings")
    texts = trimmed(texts)
    g = images.features @ texts.features.T
    i2t_c, t2i_c = _top_candidates(g, k), _top_candidates(g.T, k)
    i2t = torch.empty(i2t_c.shape, dtype=g.dtype)
    for q in range(g.shape[0]):  # image -> its candidate texts: mean over patches of the best token (Eq. 4)
        c = i2t_c[q]
        fwd, _ = late_interaction(images.tokens[q : q + 1], images.mask[q : q + 1], texts.tokens[c], texts.mask[c])
        i2t[q] = fwd[0]
    t2i = torch.empty(t2i_c.shape, dtype=g.dtype)
    for q in range(g.shape[1]):  # text -> its candidate images: mean over real tokens of the best patch (Eq. 5)
        c = t2i_c[q]
        fwd, _ = late_interaction(texts.tokens[q : q + 1], texts.mask[q : q + 1], images.tokens[c], images.mask[c])
        t2i[q] = fwd[0]
    return _rescored(g, i2t_c, i2t), _rescored(g.T, t2i_c, t2i)


@torch.no_grad()
def itm_log_odds(model, image_tokens: torch.Tensor, text_in: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """[n]: a single-stream model's ITM log-odds (matched minus not matched) for n image-caption pairs."""
    device = next(model.parameters()).device
    fused = model.fuse(text_in.to(device), text_mask.to(device), image_tokens.to(device))
    logits = model.itm_head(fused["cls"]).float()
    return (logits[:, 1] - logits[:, 0]).cpu()


@SCORERS.register("itm")
def itm(images: Encoded, texts: Encoded, k: int = 256, model=None) -> tuple[torch.Tensor, torch.Tensor]:
    """ITC cosine, each query's top-k candidates re-ranked by the ITM head (see the module doc)."""
    if model is None or not hasattr(model, "itm_head") or images.tokens is None or texts.tokens is None:
        raise ValueError("the itm scorer needs a single-stream model (model.family: single_stream)")
    texts = trimmed(texts)
    text_in = model.fusion_input(texts.ids, texts.tokens)
    g = images.features @ texts.features.T
    i2t_c, t2i_c = _top_candidates(g, k), _top_candidates(g.T, k)
    i2t = torch.empty(i2t_c.shape, dtype=g.dtype)
    for q in range(g.shape[0]):  # image q with each of its candidate captions
        c = i2t_c[q]
        image = images.tokens[q : q + 1].expand(len(c), -1, -1)
        i2t[q] = itm_log_odds(model, image, text_in[c], texts.mask[c])
    t2i = torch.empty(t2i_c.shape, dtype=g.dtype)
    for q in range(g.shape[1]):  # caption q with each of its candidate images
        c = t2i_c[q]
        caption, mask = text_in[q : q + 1], texts.mask[q : q + 1]
        t2i[q] = itm_log_odds(
            model, images.tokens[c], caption.expand(len(c), *caption.shape[1:]), mask.expand(len(c), -1)
        )
    return _rescored(g, i2t_c, i2t), _rescored(g.T, t2i_c, t2i)


def class_scores_global(images: Encoded, templates: list[Encoded]) -> torch.Tensor:
    """[N, C]: cosine to each class's mean template embedding, re-normalised (CLIP's ensemble).
    `templates[c].features` are the class's C_t template embeddings [T, d]."""
    classes = torch.stack([torch.nn.functional.normalize(t.features.mean(0), dim=-1) for t in templates])
    return images.features @ classes.T


def class_scores_tokenwise(images: Encoded, templates: list[Encoded]) -> torch.Tensor:
    """[N, C]: FILIP's token-wise ensemble, the mean over a class's templates of the image-to-
    text late-interaction similarity (each template's padding masked)."""
    cols = []
    for t in map(trimmed, templates):
        fwd, _ = late_interaction(images.tokens, images.mask, t.tokens, t.mask)  # [N, T]
        cols.append(fwd.mean(dim=1))
    return torch.stack(cols, dim=1)
