"""Small hand-made dataset versions for augment tests (PIL drawings + a docs/formats.md manifest)."""

from __future__ import annotations

import io
import json
import os
import random
import tarfile

from PIL import Image, ImageDraw

from catalog import storage
from catalog.keys import sample_key

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


def write_version(root: str, dataset: str = "tiny", version: int = 1, per_shard: tuple[int, ...] = (3, 2)) -> dict:
    """A complete version with len(per_shard) shards of drawn images and CAPTIONS."""
    base = os.path.join(root, dataset, f"v{version}")
    os.makedirs(os.path.join(base, "shards"), exist_ok=True)
    shards, keys, n = [], [], 0
    for s, count in enumerate(per_shard):
        rel = f"v{version}/shards/shard-{s:06d}.tar"
        path = os.path.join(root, dataset, rel)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for _ in range(count):
                url = f"http://127.0.0.1:1/img/{n}.jpg"
                key = sample_key(url)
                keys.append(key)
                meta = {"url": url, "orig_width": 320, "orig_height": 256, "width": 320, "height": 256, "lang": "en",
                        "lang_score": 0.9, "english_ratio": 1.0, "phash": "0" * 16, "person_substituted": "<person>" in CAPTIONS[n % 5]}
                for ext, data in (("jpg", drawn_jpeg(n)), ("txt", CAPTIONS[n % 5].encode()), ("json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                n += 1
        shards.append({"path": rel, "samples": count, "bytes": os.path.getsize(path), "sha256": ""})
    for name in ("kept.parquet", "rejects.parquet"):
        storage.write_bytes(os.path.join(base, name), b"PAR1-placeholder-" + name.encode())
    funnel = {"in": n, "kept": n, "rejected": {}, "stages": []}
    storage.write_json(os.path.join(base, "stats.json"), funnel)
    manifest = {
        "format": "lipforge.manifest/1", "dataset": dataset, "version": version, "parents": [],
        "created": "2026-11-27T00:00:00+00:00", "code_version": "test", "config": {}, "sources": [],
        "funnel": funnel, "shards": shards, "samples": n,
        "schema": {"keys": ["jpg", "txt", "json"], "views": {"image": ["jpg"], "text": ["txt"]}},
        "stats": {"person_share": 0.2}, "preview": keys[:32],
    }
    storage.write_json(os.path.join(base, "manifest.json"), manifest)
    return manifest
