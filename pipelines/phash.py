"""64-bit perceptual hash (imagehash's DCT pHash) for near-duplicate images."""

from __future__ import annotations

import imagehash
from PIL import Image


def phash64(image: Image.Image) -> int:
    """The 64-bit DCT perceptual hash of `image` as an int."""
    return int(str(imagehash.phash(image, hash_size=8)), 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
