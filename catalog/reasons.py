"""The one reject-reason vocabulary, in check order.

Every input row ends as kept or as rejected with exactly one of these reasons: the
first check, in this order, that the row fails. The sample-web generator computes its
truth with the same order, and the pipeline applies its checks in it.

Text checks run first, on the URL list itself, so a row whose caption fails is never
downloaded (no bandwidth spent on it, and a caption with a person name is scrubbed before
anything is written). Order and sources (FILIP §3.1 data cleaning; DeCLIP appendix A):
 1. empty_caption        nothing left after ftfy + whitespace normalisation (DeCLIP)
 2. meaningless_caption  file names, camera prefixes, URLs, digits/punctuation only (FILIP)
 3. not_english          fastText lid.176 does not say English (FILIP)
 4. low_english_ratio    < 80% of words are English words (DeCLIP)
 5. single_pos           every word has the same part of speech (DeCLIP)
 6. sensitive            caption contains a word from the sensitive-word list
 7. repeated_caption     normalised caption occurs > 10 times in the whole input (FILIP)
 8. download_failed      the URL could not be fetched (404, 500, timeout, bad host)
 9. too_many_pixels      width * height above the pixel limit, read from the header
10. not_an_image         the bytes do not decode as an image (corrupt, truncated, HTML)
11. image_too_small      shorter side of the original image < 200 px (FILIP)
12. aspect_ratio         long side / short side > 3 (FILIP)
13. duplicate_image      exact or near duplicate of another kept image (one representative kept)
"""

from __future__ import annotations

REASONS: tuple[str, ...] = (
    "empty_caption",
    "meaningless_caption",
    "not_english",
    "low_english_ratio",
    "single_pos",
    "sensitive",
    "repeated_caption",
    "download_failed",
    "too_many_pixels",
    "not_an_image",
    "image_too_small",
    "aspect_ratio",
    "duplicate_image",
)

KEEP = "keep"
FATES: tuple[str, ...] = (KEEP, *REASONS)
_RANK = {reason: i for i, reason in enumerate(REASONS)}


def check_reason(reason: str) -> str:
    """Return `reason` if it is in the vocabulary, else raise naming the allowed values."""
    if reason not in _RANK:
        raise ValueError(f"unknown reject reason {reason!r}; allowed: {', '.join(REASONS)}")
    return reason


def first_reason(reasons: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The reason that wins when a row fails several checks (the earliest in REASONS)."""
    if not reasons:
        return None
    return min((check_reason(r) for r in reasons), key=_RANK.__getitem__)
