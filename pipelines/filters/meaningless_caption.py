"""`meaningless_caption` (FILIP §3.1): captions that carry no description — file names,
camera prefixes, URLs, or no letter at all (digits / punctuation / symbols). Regex only."""

from __future__ import annotations

import re
from typing import Any

from pipelines.filters.base import Filter, Verdict, register, reject

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
    re.compile(
        r"^(?:(?:https?|ftp)://\S+|www\.\S+|\S+\.(?:com|org|net|html?|php)(?:/\S*)?)(?:\s+(?:(?:https?|ftp)://\S+|www\.\S+))*$",
        re.IGNORECASE,
    ),
]


def is_meaningless(caption: str) -> bool:
    """File names, camera prefixes, URLs, or no letter at all (digits / punctuation / symbols)."""
    if not any(ch.isalpha() for ch in caption):
        return True
    return any(p.match(caption) for p in _MEANINGLESS)


@register
class MeaninglessCaption(Filter):
    name = "meaningless_caption"
    reason = "meaningless_caption"

    scores = ("meaningless",)

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"meaningless": is_meaningless(row["caption"])}

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return reject(self.reason) if scores["meaningless"] else True
