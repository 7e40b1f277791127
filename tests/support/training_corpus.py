"""A small shapes-and-captions dataset version for training tests, written by `support.versions`.

Each image holds one shape of a colour at a position on a plain background, resized to
shorter side 256; the caption names all three, and a paraphrase stands in for the
back-translation view (`bt.spa.txt`). Views g0/g1/l0/eda0 are written when asked for; the
manifest declares every view member written.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from catalog import storage
from catalog.keys import sample_key
from catalog.publish import publish_version
from catalog.shards import write_shard
from catalog.synthetic import funnel_for
from catalog.versions import version_numbers
from support.versions import jpeg, sample_members
from support.versions import write_version as publish

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 20),
    "purple": (140, 40, 170),
    "orange": (245, 140, 20),
}
SHAPES = ["circle", "square", "triangle", "diamond", "cross"]
PLACES = {"left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28), "bottom": (0.5, 0.72)}


def draw(colour: str, shape: str, place: str, rng: random.Random) -> tuple[Image.Image, list[float]]:
    """The picture and its shape's bounding box as fractions of width and height."""
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
    return img, [round(v, 4) for v in ((cx - r) / w, (cy - r) / h, (cx + r) / w, (cy + r) / h)]


def scene_json(colour: str, shape: str, box: list[float]) -> str:
    """The scene as the sample web corpus records it (docs/formats.md), one shape."""
    scene = {
        "background": "plain",
        "relation": None,
        "region": None,
        "left_to_right": False,
        "shapes": [{"kind": shape, "colour": colour, "size": "large", "box": box}],
    }
    return json.dumps(scene, sort_keys=True, separators=(",", ":"))


def make_pairs(n: int, seed: int) -> list[tuple[str, Image.Image, str, str, str]]:
    """(url, image, caption, paraphrase, scene json) rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour, shape, place = rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(list(PLACES))
        caption = f"a {colour} {shape} on the {place}"
        paraphrase = f"there is a {shape} coloured {colour} at the {place}"
        img, box = draw(colour, shape, place, rng)
        rows.append((f"http://127.0.0.1/s{seed}/{i}.jpg", img, caption, paraphrase, scene_json(colour, shape, box)))
    return rows


def write_version(
    root: str | Path,
    dataset: str,
    n: int,
    seed: int,
    per_shard: int = 100,
    views: bool = False,
    back_translation: bool = True,
) -> dict:
    """Write the next version of `dataset` under `root` (shards, tables, manifest last); return the manifest."""
    samples = []
    for url, img, caption, para, scene in make_pairs(n, seed):
        extra = {"bt.spa.txt": para.encode()} if back_translation else {}
        if views:
            extra.update(
                {
                    "g0.jpg": jpeg(img.transpose(Image.FLIP_LEFT_RIGHT)),
                    "g1.jpg": jpeg(img.crop((16, 16, 240, 240))),
                    "l0.jpg": jpeg(img.crop((0, 0, 128, 128))),
                    "eda0.txt": caption.replace(" the ", " ").encode(),
                }
            )
        samples.append((url, sample_members(url, jpeg(img), caption, extra, meta={"scene": scene})))
    declared = {
        "image": ["g0.jpg", "g1.jpg", "l0.jpg"] if views else [],
        "text": (["bt.spa.txt"] if back_translation else []) + (["eda0.txt"] if views else []),
    }
    return publish(root, dataset, samples, per_shard=per_shard, views=declared)


def write_unimodal(root: str | Path, dataset: str, modality: str, n: int, seed: int, per_shard: int = 100) -> dict:
    """The next version of `dataset` with only images (`modality="image"`: jpg + json) or only
    captions (`"text"`: txt + json) of the shapes corpus; the manifest records the modality."""
    root = str(root)
    version = (version_numbers(root, dataset) or [0])[-1] + 1
    rows = make_pairs(n, seed)
    shards = []
    for i, start in enumerate(range(0, n, per_shard)):
        samples = []
        for url, img, caption, _, _ in rows[start : start + per_shard]:
            members = sample_members(url, jpeg(img), caption)
            members.pop("txt" if modality == "image" else "jpg")
            samples.append((sample_key(url), members.items()))
        path = f"v{version}/shards/shard-{i:06d}.tar"
        shards.append({"path": path, **write_shard(storage.join(root, dataset, path), samples)})
    sources = [{"uri": f"test://{dataset}/v{version}", "rows": n, "sha256": "0" * 64}]
    return publish_version(
        root,
        dataset,
        version,
        shards,
        funnel=funnel_for(n, {}),
        config={},
        sources=sources,
        code="test",
        modality=modality,
    )
