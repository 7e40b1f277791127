"""An evaluation set: a dataset version read once, as distinct images with their captions.

Eval sets are dataset versions like any other (`eval.sets: [demo-eval@latest, ...]`). A
sample is one (image, caption) pair; samples whose image bytes are equal are one image
with several captions (a real-photo set built from a folder keeps every caption of a photo
as its own sample, e.g. Flickr's five), so retrieval counts an image query right when any
of its captions is retrieved (`training.eval.metrics`). A caption text shared by several
images is a positive of each of them.

Labels for classification come from the sample json: a `label` field (a user's labelled set,
kept from the source with `source.keep_columns: [label]`), or, for the shapes world, the
`scene` the sample web corpus records (docs/formats.md): `shape`, `colour` and
`shape_colour`, each defined on the images where it is unambiguous (every shape in the
picture has the same kind / colour / both). Boxes (fractions of the served image) are
mapped into the model's input crop (`training.data.load_image`: shorter side resized to S,
centre crop) for localisation.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from training.data import load_image, raw_samples, resolve_shards

LABEL_KINDS = ("shape", "colour", "shape_colour", "label")


@dataclass
class EvalSet:
    ref: str  # NAME@N, resolved
    images: torch.Tensor  # [N, 3, S, S] model inputs
    captions: list[str]  # every caption of the set
    caption_image: list[int]  # the image index of each caption
    jpgs: list[bytes]  # the image bytes (for drawings)
    meta: list[dict[str, Any]]  # the first sample json of each image (scene parsed)
    keys: list[str]  # the first sample key of each image
    sizes: list[tuple[int, int]] = field(default_factory=list)  # decoded (width, height) of each image

    @property
    def positives(self) -> torch.Tensor:
        """[images, captions] bool: caption j describes image i: it is one of i's captions, or
        its text equals one of them (two images with the same caption text cannot be told
        apart by it, so retrieving either is right; without this, equal texts tie and the
        pessimistic tie rule would count a right answer as a miss)."""
        out = torch.zeros(len(self.jpgs), len(self.captions), dtype=torch.bool)
        by_text: dict[str, list[int]] = {}
        for j, text in enumerate(self.captions):
            by_text.setdefault(text, []).append(j)
        for text, i in zip(self.captions, self.caption_image):
            out[i, by_text[text]] = True
        return out

    def labels(self, kind: str) -> tuple[list[int], list[str]]:
        """(indices of the images the label is defined on, their class names) for `kind`."""
        idx, names = [], []
        for i, m in enumerate(self.meta):
            name = label_of(m, kind)
            if name is not None:
                idx.append(i)
                names.append(name)
        return idx, names

    def boxes(self, i: int) -> list[dict[str, Any]]:
        """Shapes of image i with their box in model-input pixels (x0, y0, x1, y1)."""
        scene = self.meta[i].get("scene")
        if not scene:
            return []
        w, h = self.sizes[i]
        s = self.images.shape[-1]
        scale = s / min(w, h)
        rw, rh = max(s, round(w * scale)), max(s, round(h * scale))
        left, top = (rw - s) // 2, (rh - s) // 2
        out = []
        for shape in scene["shapes"]:
            x0, y0, x1, y1 = shape["box"]
            box = (x0 * rw - left, y0 * rh - top, x1 * rw - left, y1 * rh - top)
            out.append({**shape, "pixels": box})
        return out


def label_of(meta: dict[str, Any], kind: str) -> str | None:
    if kind == "label":
        value = meta.get("label")
        return None if value in (None, "") else str(value)
    scene = meta.get("scene")
    if not scene or not scene.get("shapes"):
        return None
    kinds = {s["kind"] for s in scene["shapes"]}
    colours = {s["colour"] for s in scene["shapes"]}
    if kind == "shape":
        return kinds.pop() if len(kinds) == 1 else None
    if kind == "colour":
        return colours.pop() if len(colours) == 1 else None
    if kind == "shape_colour":
        return f"{colours.pop()} {kinds.pop()}" if len(kinds) == 1 and len(colours) == 1 else None
    raise ValueError(f"unknown label kind {kind!r}; known: {', '.join(LABEL_KINDS)}")


def _meta(raw: bytes | None) -> dict[str, Any]:
    meta = json.loads(raw) if raw else {}
    if isinstance(meta.get("scene"), str):
        meta["scene"] = json.loads(meta["scene"])
    return meta


def load_eval_set(root: str, ref: str, image_size: int, max_images: int = 1000) -> EvalSet:
    """Read the version's samples (up to `max_images` distinct images, in shard order)."""
    manifest, urls = resolve_shards(root, ref)
    resolved = f"{manifest['dataset']}@{manifest['version']}"
    by_digest: dict[str, int] = {}
    jpgs, meta, keys, sizes, captions, caption_image, tensors = [], [], [], [], [], [], []
    for s in raw_samples(urls, ("jpg", "txt", "json")):
        if "jpg" not in s or "txt" not in s:
            continue
        digest = hashlib.sha256(s["jpg"]).hexdigest()
        if digest not in by_digest:
            if len(jpgs) == max_images:
                continue
            by_digest[digest] = len(jpgs)
            jpgs.append(s["jpg"])
            meta.append(_meta(s.get("json")))
            keys.append(s["__key__"])
            sizes.append(Image.open(io.BytesIO(s["jpg"])).size)
            tensors.append(load_image(s["jpg"], image_size))
        captions.append(s["txt"].decode("utf-8"))
        caption_image.append(by_digest[digest])
    if not jpgs:
        raise ValueError(f"eval set {resolved} has no image-caption samples")
    return EvalSet(resolved, torch.stack(tensors), captions, caption_image, jpgs, meta, keys, sizes)
