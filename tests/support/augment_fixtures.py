"""Small dataset versions for augment tests: PIL drawings + CAPTIONS, written by `support.versions`."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

from support.versions import sample_members
from support.versions import write_version as publish

CAPTIONS = [
    "A red ball lies on the green grass near a small wooden house .",
    "A man named <person> rides a brown horse on the beach .",
    "Two dogs run through the snow in the park .",
    "A blue car is parked in front of a tall white building .",
    "A girl in a yellow dress is climbing the stairs .",
]


def drawn_jpeg(seed: int, size: tuple[int, int] = (320, 256)) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(8):
        x0, y0 = rng.randrange(size[0] - 40), rng.randrange(size[1] - 40)
        box = (x0, y0, x0 + rng.randrange(20, 120), y0 + rng.randrange(20, 120))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def write_version(root: str, dataset: str = "tiny", per_shard: tuple[int, ...] = (3, 2)) -> dict:
    """The next version of `dataset`: len(per_shard) shards of drawn images and CAPTIONS."""
    samples = []
    for n in range(sum(per_shard)):
        url = f"http://127.0.0.1:1/img/{n}.jpg"
        samples.append((url, sample_members(url, drawn_jpeg(n), CAPTIONS[n % 5], meta={"phash": "0" * 16})))
    return publish(root, dataset, samples, per_shard=per_shard)
