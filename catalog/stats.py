"""Version statistics stored in manifest["stats"]: fixed-edge histograms and person share.

A histogram is `{"edges": [e0, ..., en], "counts": [c0, ..., c(n-1)]}`: bin i counts
values in [e_i, e_(i+1)); values below e0 fall in the first bin and values at or above en
in the last, so counts always add up to the number of samples that have the value (every
sample of a pair version; an image-only version has no captions or language scores, a
text-only version no image sizes, so those histograms count nothing). Fixed edges make versions
comparable bin by bin. The edges follow the filter thresholds of FILIP §3.1 (short side
200 px, aspect ratio 3) and the DeCLIP appendix A caption rules.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any

EDGES: dict[str, list[float]] = {
    "caption_words": [0, 3, 5, 8, 12, 16, 20, 30, 50, 100],
    "image_short_side": [0, 128, 200, 256, 384, 512, 768, 1024, 2048],
    "aspect_ratio": [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0],
    "lid_score": [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
}
PERSON_TOKEN = "<person>"
_WORD = re.compile(r"\S+")


def histogram(values: Iterable[float], edges: list[float]) -> dict[str, list[float]]:
    """Counts of `values` in the bins between `edges` (out-of-range values clamp to the end bins)."""
    counts = [0] * (len(edges) - 1)
    for value in values:
        i = bisect.bisect_right(edges, value) - 1
        counts[min(max(i, 0), len(counts) - 1)] += 1
    return {"edges": list(edges), "counts": counts}


def version_stats(samples: Iterable[tuple[str | None, dict[str, Any]]]) -> dict[str, Any]:
    """manifest["stats"] from (caption, sample json) pairs; caption None: the sample has none.

    Image sizes are the original ones (`orig_width`, `orig_height`, falling back to
    `width`, `height`): those are what the size and aspect-ratio filters judged.
    `person_share` is over the samples with a caption.
    """
    words, short, aspect, lid = [], [], [], []
    persons = captioned = 0
    for caption, meta in samples:
        if caption is not None:
            captioned += 1
            words.append(len(_WORD.findall(caption)))
            persons += PERSON_TOKEN in caption
        w = meta.get("orig_width") or meta.get("width")
        h = meta.get("orig_height") or meta.get("height")
        if w and h:
            short.append(min(w, h))
            aspect.append(max(w, h) / min(w, h))
        if meta.get("lang_score") is not None:
            lid.append(float(meta["lang_score"]))
    return {
        "caption_words": histogram(words, EDGES["caption_words"]),
        "image_short_side": histogram(short, EDGES["image_short_side"]),
        "aspect_ratio": histogram(aspect, EDGES["aspect_ratio"]),
        "lid_score": histogram(lid, EDGES["lid_score"]),
        "person_share": persons / captioned if captioned else 0.0,
    }
