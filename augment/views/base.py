"""What a view kind is, and the pure transform of a batch of samples.

A view is a pure function of (sample key, seed, view name): its random generator is seeded
from exactly those (`view_rng`), and its recipe is recorded in the sample's json
(`views.<name>`), so the view can be regenerated from the recipe (DeCLIP appendix B
multi-view supervision; FILIP §3.2 augmentations). A view kind declares the member names it
writes under a config (`members(cfg)`) without being built; the augment job writes those
names into the manifest's schema (`declared_views`), where the catalog and the trainer read
them. Nothing here reads or writes storage: samples in, view members and recipes out.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from typing import Any, ClassVar

from PIL import Image

from augment.config import AugmentConfig
from catalog.registry import Registry

# __key__, jpg (bytes), txt (str), json (dict), members (dict[str, bytes]: every member, in tar order)
Sample = dict[str, Any]
Made = list[tuple[dict[str, bytes], dict[str, Any]]]  # per sample: (new members, recipes by view name)
MODALITIES = ("image", "text")


def view_rng(key: str, seed: int, view: str) -> random.Random:
    """The generator of one view: a function of (sample key, seed, view name) only."""
    digest = hashlib.sha256(f"{key}\x1f{seed}\x1f{view}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class ViewKind:
    """One kind of view, one module under `augment/views/`, registered in `VIEWS` by `name`.

    Class attributes: `name` (the name in `augment.views: [...]`), `modality` ("image" or
    "text"). `members(cfg)` names the members the kind may add to a sample under `cfg`
    (a member may be absent from a sample, e.g. a failed back-translation); `make(samples)`
    returns, per sample, the members it adds and their recipes, and counts `stats`.
    """

    name: ClassVar[str]
    modality: ClassVar[str]

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.stats: Counter[str] = Counter()

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        """Member names this kind adds to a sample under `cfg` (without building it)."""
        raise NotImplementedError

    def make(self, samples: list[Sample]) -> Made:
        raise NotImplementedError

    def close(self) -> None:
        """Release processes and models."""

    def _count(self, produced: dict[str, bytes]) -> None:
        self.stats["samples"] += 1
        self.stats["produced"] += len(produced)
        self.stats["bytes"] += sum(len(v) for v in produced.values())


VIEWS: Registry[type[ViewKind]] = Registry("view")


def declared_views(cfg: AugmentConfig) -> dict[str, list[str]]:
    """The view members `cfg` writes, by modality (manifest["schema"]["views"])."""
    out: dict[str, list[str]] = {m: [] for m in MODALITIES}
    for name in cfg.views:
        kind = VIEWS.get(name)
        out[kind.modality].extend(kind.members(cfg))
    return {m: sorted(set(names)) for m, names in out.items()}


def build_kinds(cfg: AugmentConfig) -> list[ViewKind]:
    """The configured view kinds, built (models, processes and caches opened), in config order."""
    return [VIEWS.get(name)(cfg) for name in cfg.views]


def transform_samples(samples: list[Sample], kinds: list[ViewKind]) -> list[Sample]:
    """Add every kind's members and recipes to `samples` (in place) and return them.

    New members follow the sample's own (in kind order); the json member is rewritten in
    place with the recipes under `views` (sorted keys, UTF-8).
    """
    for kind in kinds:
        for sample, (members, recipes) in zip(samples, kind.make(samples), strict=True):
            sample["members"].update(members)
            sample["json"].setdefault("views", {}).update(recipes)
    for sample in samples:
        sample["members"]["json"] = json.dumps(sample["json"], sort_keys=True, ensure_ascii=False).encode("utf-8")
        sample.pop("_image", None)
    return samples


def source_image(sample: Sample) -> Image.Image:
    """The decoded RGB source image, decoded once per sample and shared by image view kinds."""
    if "_image" not in sample:
        with Image.open(io.BytesIO(sample["jpg"])) as img:
            sample["_image"] = img.convert("RGB")
    return sample["_image"]


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
