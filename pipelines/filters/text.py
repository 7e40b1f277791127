"""Cheap caption filters: empty, meaningless (FILIP §3.1), sensitive words. Regex only, no model."""

from __future__ import annotations

import re
from typing import Any

from pipelines.filters.base import FILTERS, Filter, Verdict, reject
from pipelines.filters.config import TextFilterConfig


@FILTERS.register("empty_caption")
class EmptyCaption(Filter):
    """Nothing left after cleaning (DeCLIP appendix A drops empty texts)."""

    name = "empty_caption"
    reason = "empty_caption"

    def __init__(self, config: TextFilterConfig | None = None) -> None:
        self.config = config or TextFilterConfig()

    def keep(self, row: dict[str, Any]) -> Verdict:
        return True if row.get("caption") else reject(self.reason)


_IMAGE_EXT = r"(?:jpe?g|jfif|png|gif|bmp|tiff?|webp|hei[cf]|avif|raw|cr2|nef|arw|dng|svg|mp4|mov|avi)"
# Camera / phone file stems: IMG_0042, DSC01234, DSCN0042, DCIM, PXL_20230101_123456, MVIMG_..., GOPR0001.
_CAMERA_STEM = r"(?:img|dsc[nf]?|dcim|pxl|mvimg|vid|gopr|gp|dji|sam|imag|image|photo|pic|screenshot|scan|wp|p)"
_MEANINGLESS = [
    # a file name or path ending in an image/video extension: "IMG_0042.JPG", "img_0.jpg", "a/b/photo 1.png"
    re.compile(rf"^[^\s]*(?:\s[^\s]*){{0,2}}\.{_IMAGE_EXT}$", re.IGNORECASE),
    # a bare camera stem with a number: "DSC01234", "PXL_20230101_123456", "DCIM/100CANON"
    re.compile(rf"^(?:[\w.-]*/)*{_CAMERA_STEM}[\s_-]?\d[\w-]*$", re.IGNORECASE),
    re.compile(r"^dcim(?:/\S*)?$", re.IGNORECASE),
    # only URLs / domains: "https://example.com/x.jpg", "www.example.com"
    re.compile(r"^(?:(?:https?|ftp)://\S+|www\.\S+|\S+\.(?:com|org|net|html?|php)(?:/\S*)?)(?:\s+(?:(?:https?|ftp)://\S+|www\.\S+))*$", re.IGNORECASE),
]


def is_meaningless(caption: str) -> bool:
    """File names, camera prefixes, URLs, or no letter at all (digits / punctuation / symbols)."""
    if not any(ch.isalpha() for ch in caption):
        return True
    return any(p.match(caption) for p in _MEANINGLESS)


@FILTERS.register("meaningless_caption")
class MeaninglessCaption(Filter):
    """FILIP §3.1: captions that carry no description (file names, URLs, numbers)."""

    name = "meaningless_caption"
    reason = "meaningless_caption"

    def __init__(self, config: TextFilterConfig | None = None) -> None:
        self.config = config or TextFilterConfig()

    def keep(self, row: dict[str, Any]) -> Verdict:
        return reject(self.reason) if is_meaningless(row["caption"]) else True


@FILTERS.register("sensitive")
class SensitiveWords(Filter):
    """Caption contains a listed word: whole words, case-insensitive (`sensitive_words`).

    A list entry of several words ("adult content") matches that phrase with any whitespace.
    """

    name = "sensitive"
    reason = "sensitive"

    def __init__(self, config: TextFilterConfig | None = None) -> None:
        self.config = config or TextFilterConfig()
        words = sorted({w.strip().lower() for w in self.config.sensitive_words if w.strip()}, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\w)(?:%s)(?!\w)" % "|".join(r"\s+".join(map(re.escape, w.split())) for w in words), re.IGNORECASE)
            if words
            else None
        )

    def keep(self, row: dict[str, Any]) -> Verdict:
        if self._pattern is not None and self._pattern.search(row["caption"]):
            return reject(self.reason)
        return True
