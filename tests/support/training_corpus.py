"""A small shapes-and-captions dataset version for training tests (docs/formats.md layout).

Each image holds one shape of a colour at a position on a plain background, resized to
shorter side 256; the caption names all three, and a paraphrase stands in for the
back-translation view (`bt.spa.txt`). Views g0/l0/eda0 are written when asked for.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

from PIL import Image, ImageDraw

from catalog import storage
from catalog.keys import sample_key

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (235, 210, 20),
           "purple": (140, 40, 170), "orange": (245, 140, 20)}
SHAPES = ["circle", "square", "triangle", "diamond", "cross"]
PLACES = {"left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28), "bottom": (0.5, 0.72)}


def draw(colour: str, shape: str, place: str, rng: random.Random) -> Image.Image:
    w, h = rng.randint(256, 320), 256
    bg = tuple(rng.randint(90, 170) for _ in range(3))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    cx, cy = PLACES[place][0] * w, PLACES[place][1] * h
    r = rng.uniform(0.16, 0.22) * h
    fill = COLOURS[colour]
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    else:
        d.rectangle([cx - r, cy - r / 3, cx + r, cy + r / 3], fill=fill)
        d.rectangle([cx - r / 3, cy - r, cx + r / 3, cy + r], fill=fill)
    return img


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def make_pairs(n: int, seed: int) -> list[tuple[str, Image.Image, str, str]]:
    """(url, image, caption, paraphrase) rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour, shape, place = rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(list(PLACES))
        caption = f"a {colour} {shape} on the {place}"
        paraphrase = f"there is a {shape} coloured {colour} at the {place}"
        rows.append((f"http://127.0.0.1/s{seed}/{i}.jpg", draw(colour, shape, place, rng), caption, paraphrase))
    return rows


def write_version(root: str | Path, dataset: str, n: int, seed: int, per_shard: int = 100,
                  views: bool = False) -> dict:
    """Write {root}/{dataset}/v1 with shards + manifest.json (written last); returns the manifest."""
    base = Path(root) / dataset / "v1"
    (base / "shards").mkdir(parents=True, exist_ok=True)
    rows = make_pairs(n, seed)
    shards = []
    for s in range(0, n, per_shard):
        rel = f"v1/shards/shard-{s // per_shard:06d}.tar"
        path = Path(root) / dataset / rel
        with tarfile.open(path, "w") as tar:
            for url, img, caption, para in rows[s : s + per_shard]:
                key = sample_key(url)
                members = {"jpg": jpeg(img), "txt": caption.encode(), "bt.spa.txt": para.encode(),
                           "json": json.dumps({"url": url, "width": img.width, "height": img.height}).encode()}
                if views:
                    members["g0.jpg"] = jpeg(img.transpose(Image.FLIP_LEFT_RIGHT))
                    members["l0.jpg"] = jpeg(img.crop((0, 0, 128, 128)))
                    members["eda0.txt"] = caption.replace(" the ", " ").encode()
                for ext, data in members.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        data = path.read_bytes()
        shards.append({"path": rel, "samples": len(rows[s : s + per_shard]), "bytes": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {
        "format": "lipforge.manifest/1", "dataset": dataset, "version": 1, "parents": [],
        "created": "2026-01-01T00:00:00Z", "code_version": "test", "config": {}, "sources": [],
        "funnel": {"in": n, "kept": n, "rejected": {}, "stages": []}, "shards": shards, "samples": n,
        "schema": {"keys": ["jpg", "txt", "json", "bt.spa.txt"] + (["g0.jpg", "l0.jpg", "eda0.txt"] if views else []),
                   "views": {"image": ["g0", "l0"] if views else [], "text": ["bt.spa"] + (["eda0"] if views else [])}},
        "stats": {}, "preview": [],
    }
    storage.write_json(str(base / "manifest.json"), manifest)
    return manifest
