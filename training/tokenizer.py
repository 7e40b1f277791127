"""Caption tokenisation: open_clip's CLIP BPE (49,408 tokens, context 77) plus two specials.

`<person>` (person-name substitution, FILIP A.1) and `<mask>` (for later MLM objectives)
get ids 49408 and 49409. Because they sit above the end-of-text id, text pooling must look
for the EOT id rather than take the argmax id. The padding mask marks every position up
to and including EOT as real.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from open_clip.tokenizer import SimpleTokenizer

CONTEXT_LENGTH = 77
SPECIAL_TOKENS = ("<person>", "<mask>")


@lru_cache(maxsize=None)
def tokenizer(context_length: int = CONTEXT_LENGTH) -> SimpleTokenizer:
    return SimpleTokenizer(context_length=context_length, additional_special_tokens=list(SPECIAL_TOKENS))


def vocab_size() -> int:
    return tokenizer().vocab_size


def eot_id() -> int:
    return tokenizer().eot_token_id


def mask_id() -> int:
    return tokenizer().encoder["<mask>"]


def tokenize(texts: list[str], context_length: int = CONTEXT_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [N, context] (long) and padding mask [N, context] (bool, True = real token)."""
    ids = tokenizer(context_length)(texts, context_length=context_length)
    return ids, padding_mask(ids)


def padding_mask(ids: torch.Tensor) -> torch.Tensor:
    """True up to and including the (first) end-of-text token."""
    eot_pos = (ids == eot_id()).int().argmax(dim=-1)
    return torch.arange(ids.shape[-1], device=ids.device)[None] <= eot_pos[:, None]
