"""`meaningless_caption` (FILIP §3.1): captions that carry no description — file names,
camera prefixes, URLs, or no letter at all (digits / punctuation / symbols). Regex only.

Each pattern runs only on captions that have what any match of it needs (a "." among the
last six characters for a file name, at most two words for a camera stem, a "." or "://"
in the first word for a URL), so a described caption is rejected by string tests alone.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.filters.base import Filter, Verdict, register, reject
from pipelines.filters.english import caption_words

_IMAGE_EXT = r"(?:jpe?g|jfif|png|gif|bmp|tiff?|webp|hei[cf]|avif|raw|cr2|nef|arw|dng|svg|mp4|mov|avi)"
# Camera / phone file stems: IMG_0042, DSC01234, DSCN0042, DCIM, PXL_20230101_123456, MVIMG_..., GOPR0001.
_CAMERA_STEM = r"(?:img|dsc[nf]?|dcim|pxl|mvimg|vid|gopr|gp|dji|sam|imag|image|photo|pic|screenshot|scan|wp|p)"
# a file name or path ending in an image/video extension: "IMG_0042.JPG", "img_0.jpg", "a/b/photo 1.png"
# (the extension has at most 4 letters and `$` may stand before a final newline: "." in the last 6)
_FILE_NAME = re.compile(rf"^[^\s]*(?:\s[^\s]*){{0,2}}\.{_IMAGE_EXT}$", re.IGNORECASE)
# a bare camera stem with a number: "DSC01234", "PXL_20230101_123456", "DCIM/100CANON" (at most 2 words)
_CAMERA = [
    re.compile(rf"^(?:[\w.-]*/)*{_CAMERA_STEM}[\s_-]?\d[\w-]*$", re.IGNORECASE),
    re.compile(r"^dcim(?:/\S*)?$", re.IGNORECASE),
]
# only URLs / domains: "https://example.com/x.jpg", "www.example.com" (a "." or "://" in the first word)
_URLS = re.compile(
    r"^(?:(?:https?|ftp)://\S+|www\.\S+|\S+\.(?:com|org|net|html?|php)(?:/\S*)?)(?:\s+(?:(?:https?|ftp)://\S+|www\.\S+))*$",
    re.IGNORECASE,
)


def is_meaningless(caption: str) -> bool:
    """File names, camera prefixes, URLs, or no letter at all (digits / punctuation / symbols)."""
    if not (caption_words(caption) if caption.isascii() else any(ch.isalpha() for ch in caption)):
        return True  # no letter (in ASCII the letters are WORD's: `caption_words`, split for the other checks)
    if "." in caption[-6:] and _FILE_NAME.match(caption):
        return True
    words = caption.split(None, 2)
    if len(words) <= 2 and any(p.match(caption) for p in _CAMERA):
        return True
    return ("." in words[0] or "://" in words[0]) and _URLS.match(caption) is not None


@register
class MeaninglessCaption(Filter):
    name = "meaningless_caption"
    reason = "meaningless_caption"

    scores = ("meaningless",)

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"meaningless": is_meaningless(row["caption"])}

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return reject(self.reason) if scores["meaningless"] else True
