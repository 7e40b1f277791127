"""FILIP's cross-modal late interaction loss (Yao et al. 2022, Sec. 3.1.1 and "Training Efficiency").

Image i to text j: for each real image token, the maximum similarity over text j's real
tokens, averaged over image i's tokens (Eq. 4); text to image symmetrically, averaged over
real text tokens only (Eq. 5). The contrastive loss (Eq. 1) runs over both matrices.
Efficiency (Sec. 3.1.1): similarities in reduced precision, and per sample only the share
`token_fraction` of tokens with the highest token-wise max similarity against the LOCAL
batch is kept, chosen before the cross-worker gather. Pair scores are computed in chunks of
rows so peak memory is bounded by `chunk_elements` instead of growing as B*B*n1*n2.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, at_least_fp32
from training.objectives.gather import (
    all_gather_no_grad,
    all_gather_with_grad,
    gather_sizes,
    global_offset,
    share,
    world,
)

DEFAULT_CHUNK_ELEMENTS = 1 << 26


def late_interaction(
    query: torch.Tensor,
    query_mask: torch.Tensor,
    keys: torch.Tensor,
    keys_mask: torch.Tensor,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    both: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Late-interaction scores between every query and every key sample.

    query [Bq, n, d], keys [Bk, m, d], masks bool (True = real token). Returns
    `forward[q, k]` = mean over real query tokens of the max over real key tokens, and
    with `both` also `backward[q, k]` = mean over real key tokens of the max over real
    query tokens (the other direction from the same similarities). Rows of `query` are
    processed in chunks so each chunk's similarity block holds <= chunk_elements values.
    """
    bq, n, _ = query.shape
    bk, m, _ = keys.shape
    rows = max(1, chunk_elements // max(1, bk * n * m))
    key_pad = ~keys_mask[None, :, None, :]
    key_count = keys_mask.sum(-1).to(query.dtype).clamp(min=1)
    fwd, bwd = [], []
    for start in range(0, bq, rows):
        q, qm = query[start : start + rows], query_mask[start : start + rows]
        sim = torch.einsum("qnd,kmd->qknm", q, keys)
        best_key = sim.masked_fill(key_pad, float("-inf")).amax(dim=-1)
        qmask = qm[:, None, :].to(sim.dtype)
        fwd.append((best_key * qmask).sum(-1) / qmask.sum(-1).clamp(min=1))
        if both:
            best_query = sim.masked_fill(~qm[:, None, :, None], float("-inf")).amax(dim=-2)
            bwd.append((best_query * keys_mask[None].to(sim.dtype)).sum(-1) / key_count)
    return torch.cat(fwd), (torch.cat(bwd) if both else None)


@torch.no_grad()
def token_scores(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    others: torch.Tensor,
    others_mask: torch.Tensor,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Each token's maximum similarity over every real token of every other-modality sample."""
    flat = others[others_mask]
    b, n, d = tokens.shape
    rows = max(1, chunk_elements // max(1, n * flat.shape[0]))
    out = [(tokens[s : s + rows] @ flat.T).amax(-1) for s in range(0, b, rows)]
    return torch.cat(out).masked_fill(~mask, float("-inf"))


def select_tokens(
    tokens: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep ceil(fraction * real tokens) highest-scoring real tokens per sample.

    Returns tokens [B, K, d] (K = ceil(fraction * n), the same on every worker so the
    result can be gathered) and their mask; padded tokens are never chosen.
    """
    n = tokens.shape[1]
    keep_max = _ceil_share(torch.tensor(n), fraction).item()
    keep = _ceil_share(mask.sum(-1), fraction)
    idx = scores.topk(int(keep_max), dim=-1).indices
    chosen = torch.gather(tokens, 1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
    chosen_mask = torch.arange(int(keep_max), device=tokens.device)[None] < keep[:, None]
    return chosen, chosen_mask


def _ceil_share(count: torch.Tensor, fraction: float) -> torch.Tensor:
    # round first so that e.g. 0.3 * 10 = 3.0000000000000004 keeps 3, not 4
    return torch.ceil(torch.round(count.double() * fraction * 1e6) / 1e6).long()


def filip_loss(
    image_tokens: torch.Tensor,
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
    logit_scale: torch.Tensor,
    image_mask: torch.Tensor | None = None,
    token_fraction: float = 1.0,
    similarity_dtype: torch.dtype | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """The FILIP loss of this process: tokens [B, n, d] L2-normalised, masks [B, n] (True = real).

    One process (no process group, or world size 1): the loss over the batch, both
    directions from one similarity computation. Several workers: this worker's share, its
    local rows against the gathered batch; tokens are selected locally (before the gather,
    FILIP Sec. 3.1.1), then gathered with gradient (open_clip's local loss), so that after
    data-parallel averaging the gradient is the single-process full-batch gradient.
    """
    _, size = world()
    img, img_mask, txt, txt_mask = _prepare(
        image_tokens, image_mask, text_tokens, text_mask, token_fraction, similarity_dtype, chunk_elements
    )
    if size == 1:
        i2t, t2i = late_interaction(img, img_mask, txt, txt_mask, chunk_elements, both=True)
        labels = torch.arange(i2t.shape[0], device=i2t.device)
        return _symmetric_ce(logit_scale * at_least_fp32(i2t), logit_scale * at_least_fp32(t2i.T), labels)
    rows = img.shape[0]
    sizes = gather_sizes(rows, img.device)
    img_all, txt_all = all_gather_with_grad(img, txt, sizes=sizes)
    img_mask_all, txt_mask_all = all_gather_no_grad(img_mask, sizes=sizes), all_gather_no_grad(txt_mask, sizes=sizes)
    i2t, _ = late_interaction(img, img_mask, txt_all, txt_mask_all, chunk_elements)
    t2i, _ = late_interaction(txt, txt_mask, img_all, img_mask_all, chunk_elements)
    labels = torch.arange(rows, device=img.device) + global_offset(rows, sizes)
    loss = _symmetric_ce(logit_scale * at_least_fp32(i2t), logit_scale * at_least_fp32(t2i), labels)
    return loss * share(rows, sizes)


def _prepare(image_tokens, image_mask, text_tokens, text_mask, token_fraction, similarity_dtype, chunk_elements):
    if not 0.0 < token_fraction <= 1.0:
        raise ValueError(f"token_fraction must be in (0, 1], got {token_fraction}")
    if image_mask is None:
        image_mask = torch.ones(image_tokens.shape[:2], dtype=torch.bool, device=image_tokens.device)
    image_mask, text_mask = image_mask.bool(), text_mask.bool()
    if similarity_dtype is not None:
        image_tokens, text_tokens = image_tokens.to(similarity_dtype), text_tokens.to(similarity_dtype)
    if token_fraction < 1.0:
        img_scores = token_scores(image_tokens, image_mask, text_tokens, text_mask, chunk_elements)
        txt_scores = token_scores(text_tokens, text_mask, image_tokens, image_mask, chunk_elements)
        image_tokens, image_mask = select_tokens(image_tokens, image_mask, img_scores, token_fraction)
        text_tokens, text_mask = select_tokens(text_tokens, text_mask, txt_scores, token_fraction)
    return image_tokens, image_mask, text_tokens, text_mask


def _symmetric_ce(logits_i2t: torch.Tensor, logits_t2i: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2


class FilipOptions(ObjectiveOptions):
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    token_fraction: float = 0.25
    similarity_dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@OBJECTIVES.register("filip")
class FilipObjective(Objective):
    """Late-interaction contrastive loss over projected, L2-normalised tokens.

    similarity_dtype "auto" follows the run's AMP precision (fp32 without AMP).
    """

    Options = FilipOptions
    needs = frozenset({"image_tokens", "text_tokens"})
    batch_members = ("jpg", "txt")

    def __init__(self, options: FilipOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, options.max_logit_scale)
        self.options = options
        self.dtype = info.amp_dtype if options.similarity_dtype == "auto" else _DTYPES[options.similarity_dtype]

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        return filip_loss(
            outputs["image_tokens"],
            outputs["text_tokens"],
            outputs["text_mask"],
            self.logit_scale(),
            image_mask=outputs.get("image_mask"),
            token_fraction=self.options.token_fraction,
            similarity_dtype=self.dtype,
            chunk_elements=self.options.chunk_elements,
        )
