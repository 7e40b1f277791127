"""The one reject-reason vocabulary, in check order, with the stage that decides each reason.

Every input row ends as kept or as rejected with exactly one of these reasons: the
first check, in this order, that the row fails. The sample-web generator computes its
truth with the same order, and the pipeline applies its checks in it.

Text checks run first, on the URL list itself, so a row whose caption fails is never
downloaded (no bandwidth spent on it, and a caption with a person name is scrubbed before
anything is written). Order and sources (FILIP §3.1 data cleaning; DeCLIP appendix A):

| # | reason | stage | check |
|---|---|---|---|
| 1 | empty_caption | text | nothing left after ftfy + whitespace normalisation (DeCLIP) |
| 2 | meaningless_caption | text | file names, camera prefixes, URLs, digits/punctuation only (FILIP) |
| 3 | not_english | text | fastText lid.176 does not say English (FILIP) |
| 4 | low_english_ratio | text | < 80% of words are English words (DeCLIP) |
| 5 | single_pos | text | every word has the same part of speech (DeCLIP) |
| 6 | sensitive | text | caption contains a word from the sensitive-word list |
| 7 | repeated_caption | text | normalised caption occurs > 10 times in the whole input (FILIP) |
| 8 | download_failed | download | the URL could not be fetched (404, 500, timeout, bad host) |
| 9 | too_many_pixels | image | width * height above the pixel limit, read from the header |
| 10 | not_an_image | image | the bytes do not decode as an image (corrupt, truncated, HTML) |
| 11 | image_too_small | image | shorter side of the original image < 200 px (FILIP) |
| 12 | aspect_ratio | image | long side / short side > 3 (FILIP) |
| 13 | duplicate_image | dedup | exact or near duplicate of another kept image (one representative kept) |

The stage is the one whose checks decide the reason; img2dataset, inside the download
stage, applies the image limits once more on the original size (docs/pipeline.md).
"""

from __future__ import annotations

STAGES: tuple[str, ...] = ("text", "download", "image", "dedup")

_TABLE: tuple[tuple[str, str], ...] = (
    ("empty_caption", "text"),
    ("meaningless_caption", "text"),
    ("not_english", "text"),
    ("low_english_ratio", "text"),
    ("single_pos", "text"),
    ("sensitive", "text"),
    ("repeated_caption", "text"),
    ("download_failed", "download"),
    ("too_many_pixels", "image"),
    ("not_an_image", "image"),
    ("image_too_small", "image"),
    ("aspect_ratio", "image"),
    ("duplicate_image", "dedup"),
)

REASONS: tuple[str, ...] = tuple(reason for reason, _ in _TABLE)
STAGE_OF: dict[str, str] = dict(_TABLE)

KEEP = "keep"
FATES: tuple[str, ...] = (KEEP, *REASONS)
_RANK = {reason: i for i, reason in enumerate(REASONS)}


def check_reason(reason: str) -> str:
    """Return `reason` if it is in the vocabulary, else raise naming the allowed values."""
    if reason not in _RANK:
        raise ValueError(f"unknown reject reason {reason!r}; allowed: {', '.join(REASONS)}")
    return reason


def rank(reason: str) -> int:
    """The reason's position in the check order (0 = checked first)."""
    return _RANK[check_reason(reason)]


def reasons_of(stage: str) -> tuple[str, ...]:
    """The reasons `stage` decides, in check order."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return tuple(reason for reason, s in _TABLE if s == stage)


def first_reason(reasons: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The reason that wins when a row fails several checks (the earliest in REASONS)."""
    if not reasons:
        return None
    return min((check_reason(r) for r in reasons), key=_RANK.__getitem__)
