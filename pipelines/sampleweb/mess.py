"""The mess of a real crawl: category names, their rates, the reason each one earns, and
the byte-level corruptions (formats, truncation, HTML, oversized headers, near-duplicates).

Categories come in three independent slots, so one row can carry several faults (the
`combined` category) and its truth is the first of them in `catalog.reasons` order:
- caption: what the text is (foreign, junk, empty, single part of speech, names, messy);
- content: what the served bytes are (geometry faults, formats, corrupt/HTML/huge files);
- server: how the URL answers (404, 500, slow, redirect, wrong content type).
Three more categories are groups of rows: `repeated_caption` (one caption on 14 different
images), `exact_duplicate` and `near_duplicate` (one image under 2-3 URLs).
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib

from PIL import Image
from pydantic import Field

from catalog.config import Config

# category -> reason it earns on its own (None: the row stays clean)
CAPTION_FAULTS: dict[str, str | None] = {
    "spanish": "not_english",
    "catalan": "not_english",
    "german": "not_english",
    "russian": "not_english",
    "chinese": "not_english",
    "filename_caption": "meaningless_caption",
    "url_caption": "meaningless_caption",
    "number_caption": "meaningless_caption",
    "empty_caption": "empty_caption",
    "single_pos": "single_pos",
    "person_name": None,
    "messy_text": None,
}
CONTENT_FAULTS: dict[str, str | None] = {
    "small_image": "image_too_small",
    "wide_image": "aspect_ratio",
    "huge_image": "too_many_pixels",
    "corrupt_jpeg": "not_an_image",
    "html_as_image": "not_an_image",
    "png": None,
    "webp": None,
    "gif": None,
    "grayscale": None,
    "cmyk": None,
    "exif_rotated": None,
}
SERVER_FAULTS: dict[str, str | None] = {
    "status_404": "download_failed",
    "status_500": "download_failed",
    "slow": "download_failed",
    "redirect": None,
    "wrong_content_type": None,
}
GROUP_CATEGORIES = ("repeated_caption", "exact_duplicate", "near_duplicate")
REPEATS = 14  # rows per repeated-caption group (more than the repeated_caption filter's default limit, 10)

# Which faults a `combined` row draws from (only faults that earn a reason, plus formats
# and benign server behaviours, so the check order is exercised).
COMBINED_CAPTION = (
    "spanish",
    "german",
    "russian",
    "chinese",
    "filename_caption",
    "url_caption",
    "number_caption",
    "empty_caption",
    "single_pos",
)
COMBINED_CONTENT = (
    "small_image",
    "wide_image",
    "small_image+wide_image",
    "huge_image",
    "corrupt_jpeg",
    "html_as_image",
    "png",
    "grayscale",
)
COMBINED_SERVER = ("status_404", "status_500", "slow", "redirect", "wrong_content_type")

HUGE_SIZE = (12000, 9000)  # 108 Mpx: over a 100 Mpx limit


class Rates(Config):
    """Share of rows in each mess category (rows = ceil(n * rate); the rest are clean).

    Defaults put every category several times into a 2,000-row corpus and leave ~70% clean.
    """

    spanish: float = Field(0.02, ge=0, le=1)
    catalan: float = Field(0.015, ge=0, le=1)
    german: float = Field(0.01, ge=0, le=1)
    russian: float = Field(0.01, ge=0, le=1)
    chinese: float = Field(0.01, ge=0, le=1)
    filename_caption: float = Field(0.01, ge=0, le=1)
    url_caption: float = Field(0.006, ge=0, le=1)
    number_caption: float = Field(0.006, ge=0, le=1)
    empty_caption: float = Field(0.01, ge=0, le=1)
    single_pos: float = Field(0.008, ge=0, le=1)
    person_name: float = Field(0.03, ge=0, le=1)
    messy_text: float = Field(0.01, ge=0, le=1)
    repeated_caption: float = Field(0.007, ge=0, le=1)
    small_image: float = Field(0.01, ge=0, le=1)
    wide_image: float = Field(0.008, ge=0, le=1)
    huge_image: float = Field(0.003, ge=0, le=1)
    corrupt_jpeg: float = Field(0.008, ge=0, le=1)
    html_as_image: float = Field(0.005, ge=0, le=1)
    png: float = Field(0.008, ge=0, le=1)
    webp: float = Field(0.008, ge=0, le=1)
    gif: float = Field(0.005, ge=0, le=1)
    grayscale: float = Field(0.008, ge=0, le=1)
    cmyk: float = Field(0.005, ge=0, le=1)
    exif_rotated: float = Field(0.008, ge=0, le=1)
    exact_duplicate: float = Field(0.012, ge=0, le=1)
    near_duplicate: float = Field(0.012, ge=0, le=1)
    status_404: float = Field(0.008, ge=0, le=1)
    status_500: float = Field(0.005, ge=0, le=1)
    slow: float = Field(0.003, ge=0, le=1)
    redirect: float = Field(0.008, ge=0, le=1)
    wrong_content_type: float = Field(0.006, ge=0, le=1)
    combined: float = Field(0.01, ge=0, le=1)

    def rows(self, n: int) -> dict[str, int]:
        """Rows per category for an n-row corpus (every category with a rate > 0 appears)."""
        out = {}
        for name, rate in self.model_dump().items():
            k = math.ceil(round(n * rate, 9))
            if name == "repeated_caption" and k:
                k = REPEATS * math.ceil(k / REPEATS)
            if name in ("exact_duplicate", "near_duplicate") and k == 1:
                k = 2  # a group needs two members
            out[name] = k
        return out


def category_names() -> tuple[str, ...]:
    return tuple(Rates.model_fields)


# ------------------------------------------------------------------ encodings


def to_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def encode(image: Image.Image, content: str, rng: random.Random) -> tuple[bytes, str, Image.Image]:
    """Encode the displayed RGB `image` for a content category: (bytes, file extension, stored image).

    The stored image is what a decoder returns before any EXIF rotation (its mode and size
    are what the truth table records as stored; for exif_rotated the width/height swap).
    """
    if content == "png":
        return to_bytes(image, "PNG"), "png", image
    if content == "webp":
        return to_bytes(image, "WEBP", quality=85), "webp", image
    if content == "gif":
        stored = image.quantize(colors=256)
        return to_bytes(stored, "GIF"), "gif", stored
    if content == "grayscale":
        stored = image.convert("L")
        return to_bytes(stored, "JPEG", quality=90), "jpg", stored
    if content == "cmyk":
        stored = image.convert("CMYK")
        return to_bytes(stored, "JPEG", quality=90), "jpg", stored
    if content == "exif_rotated":
        return exif_rotated(image, rng.choice((3, 6, 8)))
    return to_bytes(image, "JPEG", quality=rng.randint(82, 95)), "jpg", image


# EXIF orientation -> the transpose that turns the upright picture into the stored one
# (the inverse of what a viewer, e.g. PIL.ImageOps.exif_transpose, applies).
_STORE_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def exif_rotated(image: Image.Image, orientation: int) -> tuple[bytes, str, Image.Image]:
    """A JPEG whose pixels are stored rotated, with the EXIF Orientation tag that undoes it."""
    stored = image.transpose(_STORE_TRANSPOSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return to_bytes(stored, "JPEG", quality=90, exif=exif.tobytes()), "jpg", stored


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(width: int, height: int) -> bytes:
    """A valid, tiny (~15 KB) 1-bit white PNG whose header claims width x height pixels."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    idat = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def corrupt_jpeg(jpeg: bytes, rng: random.Random) -> bytes:
    """The JPEG cut before its frame header (SOF): it starts like a JPEG, no decoder can read it."""
    sof = min(i for i in (jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2"), len(jpeg)) if i >= 0)
    return jpeg[: rng.randint(2, max(2, sof - 1))]


_HTML_TITLES = (
    "404 Not Found",
    "Access denied",
    "Please verify you are a human",
    "Page moved",
    "Sign in to continue",
    "Image hosting - upgrade your plan",
)


def html_page(rng: random.Random) -> bytes:
    """An HTML page of the kind a crawler receives instead of an image."""
    title = rng.choice(_HTML_TITLES)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>"
        f'<p>Request id {rng.randint(10**7, 10**8 - 1)}. <a href="/">Back to the gallery</a></p></body></html>\n'
    ).encode()


def near_duplicate(image: Image.Image, quality: int, rng: random.Random) -> tuple[bytes, Image.Image]:
    """A near copy of the upright `image`: re-encoded at another JPEG quality, or resized by 10-20%."""
    if rng.random() < 0.5:
        other = rng.choice([q for q in range(55, 96, 5) if abs(q - quality) >= 15])
        return to_bytes(image, "JPEG", quality=other), image
    factor = rng.choice((-1, 1)) * rng.uniform(0.10, 0.20)  # originals are >= 256 px: shrunk still >= 200
    w, h = image.size
    size = (round(w * (1 + factor)), round(h * (1 + factor)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    return to_bytes(resized, "JPEG", quality=rng.randint(80, 92)), resized
