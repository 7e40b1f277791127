"""The per-row scores a build records (`scores.parquet`) and its capped rejects sample (`rejects_sample.parquet`).

Every input row of a build, kept or rejected, has one row in `scores.parquet`: what each
check measured, before any threshold (docs/formats.md). A check's verdict is a function of
its scores and its options only, so `python -m pipelines whatif` replays other thresholds
on these columns without downloading anything, and `python -m pipelines explain --row`
prints the build's own decision for one row. A score that was never computed (the row
was never downloaded, the check is turned off, the modality has no captions) is null.

`rejects_sample.parquet` holds up to `rejects.sample_per_reason` rejected rows per reason
(chosen by `sample_order`: the smallest sha1 of the key first, so the same build gives the
same sample) with their scores, their caption after name scrubbing and a thumbnail where
an image was downloaded; a duplicate also carries its kept representative's key and
thumbnail. Raw captions are never written.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

SCORES_FILE = "scores.parquet"
REJECTS_SAMPLE_FILE = "rejects_sample.parquet"
THUMBNAIL_SIDE = 160  # longer side of a rejects-sample thumbnail, px
DEFAULT_SAMPLE_PER_REASON = 200

# column -> (type, what it is); the text columns are null for an image source, the image
# columns for a text source and for rows that never reached the download.
COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "row": (pa.int64(), "input row (0-based, in source order)"),
    "key": (pa.string(), "sample key"),
    "stage": (pa.string(), "stage that rejected the row; null when kept"),
    "reason": (pa.string(), "reject reason (catalog.reasons); null when kept"),
    "caption_empty": (pa.bool_(), "nothing left after cleaning"),
    "meaningless": (pa.bool_(), "file name, camera prefix, URL or no letter"),
    "lang": (pa.string(), "fastText lid.176 top label"),
    "lang_prob": (pa.float64(), "probability of the top label"),
    "lang_en_prob": (pa.float64(), "fastText's English probability"),
    "lid_english_ratio": (pa.float64(), "English-word ratio with foreign function words counted as foreign"),
    "n_words": (pa.int32(), "words in the caption (letters only)"),
    "english_ratio": (pa.float64(), "share of English words (names and <person> not counted)"),
    "pos": (pa.list_(pa.string()), "parts of speech that fit every word; empty: more than one part of speech"),
    "pos_words": (pa.int32(), "alphabetic words the part-of-speech check counted"),
    "sensitive": (pa.bool_(), "a word of the sensitive list occurs"),
    "name_gate": (pa.bool_(), "the cheap person-name gate let the caption through to NER"),
    "person_substituted": (pa.bool_(), "a person name was replaced by the placeholder"),
    "repeat_count": (pa.int64(), "input rows sharing the normalised caption"),
    "download_status": (pa.string(), "img2dataset status (success, failed_to_download, failed_to_resize)"),
    "download_error": (pa.string(), "img2dataset error message"),
    "orig_width": (pa.int32(), "original image width, px"),
    "orig_height": (pa.int32(), "original image height, px"),
    "decoded": (pa.bool_(), "the downloaded bytes decode as an image"),
    "phash": (pa.string(), "64-bit perceptual hash, 16 hex chars"),
    "sha256": (pa.string(), "sha256 of the downloaded bytes"),
    "duplicate_of": (pa.string(), "key of the kept image this one duplicates"),
}
SCHEMA = pa.schema([(name, kind) for name, (kind, _) in COLUMNS.items()])

# The rejects sample: every scores column, plus what a person needs to look at the row.
SAMPLE_EXTRA: dict[str, tuple[pa.DataType, str]] = {
    "url": (pa.string(), "source URL"),
    "caption": (pa.string(), "caption after cleaning and name scrubbing; null when empty or an image source"),
    "thumbnail": (pa.binary(), f"JPEG, longer side <= {THUMBNAIL_SIDE} px; null when no image was downloaded"),
    "duplicate_thumbnail": (pa.binary(), "the representative's thumbnail (duplicate_image rows only)"),
}
SAMPLE_SCHEMA = pa.schema([*SCHEMA, *((n, k) for n, (k, _) in SAMPLE_EXTRA.items())])

# The score columns a reason's check reads (what a rejects page shows first).
SCORES_OF: dict[str, tuple[str, ...]] = {
    "empty_caption": ("caption_empty",),
    "meaningless_caption": ("meaningless",),
    "not_english": ("lang", "lang_prob", "lang_en_prob", "lid_english_ratio", "n_words"),
    "low_english_ratio": ("english_ratio",),
    "single_pos": ("pos", "pos_words"),
    "sensitive": ("sensitive",),
    "repeated_caption": ("repeat_count",),
    "download_failed": ("download_status", "download_error"),
    "too_many_pixels": ("orig_width", "orig_height"),
    "not_an_image": ("decoded", "download_error"),
    "image_too_small": ("orig_width", "orig_height"),
    "aspect_ratio": ("orig_width", "orig_height"),
    "duplicate_image": ("duplicate_of", "phash", "sha256"),
}


def sample_order(key: str) -> str:
    """Sort key that picks a reason's sample: sha1 of the sample key (stable, spread over the input)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()
