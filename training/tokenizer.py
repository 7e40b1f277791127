"""Caption tokenisation: CLIP's BPE (49,408 tokens, context 77) plus two specials.

The tokenizer is `catalog.assets.clip_tokenizer`, the one CLIP tokenizer source of lipforge
(open_clip's SimpleTokenizer on the vocab it ships; `python -m pipelines doctor` checks the
same). `<person>` (person-name substitution, FILIP A.1) and `<mask>` (for later MLM
objectives) get ids 49408 and 49409. Because they sit above the end-of-text id, text
pooling must look for the EOT id rather than take the argmax id. The padding mask marks
every position up to and including EOT as real.
"""

from __future__ import annotations

from typing import Any

import torch

from catalog import assets

CONTEXT_LENGTH = 77
SPECIAL_TOKENS = ("<person>", "<mask>")


def tokenizer(context_length: int = CONTEXT_LENGTH) -> Any:
    return assets.clip_tokenizer(SPECIAL_TOKENS, context_length)


def vocab_size() -> int:
    return tokenizer().vocab_size


def eot_id() -> int:
    return tokenizer().eot_token_id


def mask_id() -> int:
    return tokenizer().encoder["<mask>"]


# Common English function words (a short list in the spirit of NLTK's): SIMLA's pseudo-labels
# are concepts, and "the" or "of" the multimodal [CLS] attends to are not (simla_psl skips them).
STOP_WORDS = (
    "a an the and or but of to in on at by for with from into onto over under as is are was were be been "
    "being it its this that these those there here his her their our your my some any each other than then "
    "very not no can will just while who which what where when how up down out off"
).split()


def stop_ids() -> tuple[int, ...]:
    """Ids of the stop words that are one BPE token (``word</w>``), ascending."""
    encoder = tokenizer().encoder
    return tuple(sorted({encoder[w + "</w>"] for w in STOP_WORDS if w + "</w>" in encoder}))


def tokenize(texts: list[str], context_length: int = CONTEXT_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [N, context] (long) and padding mask [N, context] (bool, True = real token)."""
    ids = tokenizer(context_length)(texts, context_length=context_length)
    return ids, padding_mask(ids)


def padding_mask(ids: torch.Tensor) -> torch.Tensor:
    """True up to and including the (first) end-of-text token."""
    eot_pos = (ids == eot_id()).int().argmax(dim=-1)
    return torch.arange(ids.shape[-1], device=ids.device)[None] <= eot_pos[:, None]
