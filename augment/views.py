"""View kinds, registered by name and selected in YAML (`augment.views: [global, local, eda, bt]`).

A view is a pure function of (sample key, seed, view name): its random generator is seeded
from exactly those, and its recipe is recorded in the sample's json (`views.<name>`).

| kind | members | recipe |
|---|---|---|
| `global` | `g0.jpg`, `g1.jpg` | crop box, flip, jitter values/order, grayscale, blur sigma (or AutoAugment ops) |
| `local` | `l0.jpg` … `l{K-1}.jpg` | same, 96 px crops of scale (0.05, 0.4) |
| `eda` | `eda0.txt`, `eda1.txt` | EDA operation and number of words changed |
| `bt` | `bt.<pivot>.txt` | backend, status (`ok`/`identical`/`empty`/`lost_token`), cached; member only when `ok` |
"""

from __future__ import annotations

import hashlib
import io
import random
from collections import Counter
from typing import Any, ClassVar

from PIL import Image

from augment.config import AugmentConfig, CropConfig
from catalog.registry import Registry

Sample = dict[str, Any]  # __key__, jpg (bytes), txt (str), json (dict), members (dict[str, bytes])


def view_rng(key: str, seed: int, view: str) -> random.Random:
    """The generator of one view: a function of (sample key, seed, view name) only."""
    digest = hashlib.sha256(f"{key}\x1f{seed}\x1f{view}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class ViewKind:
    """One kind of view. `make` returns, per sample, new members and recipes, and counts stats."""

    name: ClassVar[str]
    modality: ClassVar[str]  # "image" or "text"

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.stats: Counter[str] = Counter()

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        """Member extensions this kind adds to a sample under `cfg` (without building it)."""
        raise NotImplementedError

    def make(self, samples: list[Sample]) -> list[tuple[dict[str, bytes], dict[str, Any]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release processes and models."""

    def _count(self, produced: dict[str, bytes]) -> None:
        self.stats["samples"] += 1
        self.stats["produced"] += len(produced)
        self.stats["bytes"] += sum(len(v) for v in produced.values())


VIEWS: Registry[type[ViewKind]] = Registry("view")


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


class _CropViews(ViewKind):
    modality = "image"
    prefix: ClassVar[str]

    @classmethod
    def crop(cls, cfg: AugmentConfig) -> CropConfig:
        raise NotImplementedError

    def policy(self) -> str:
        return "declip"

    @classmethod
    def names(cls, cfg: AugmentConfig) -> list[str]:
        return [f"{cls.prefix}{i}" for i in range(cls.crop(cfg).count)]

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        return [f"{n}.jpg" for n in cls.names(cfg)]

    def make(self, samples: list[Sample]) -> list[tuple[dict[str, bytes], dict[str, Any]]]:
        from augment.image.recipes import SAMPLERS, apply_recipe

        sampler = SAMPLERS[self.policy()]
        photo, quality = self.cfg.image.photometric, self.cfg.image.jpeg_quality
        out = []
        for sample in samples:
            image = source_image(sample)
            members, recipes = {}, {}
            for name in self.names(self.cfg):
                recipe = sampler(view_rng(sample["__key__"], self.cfg.seed, name), image.width, image.height, self.crop(self.cfg), photo)
                members[f"{name}.jpg"] = encode_jpeg(apply_recipe(image, recipe), quality)
                recipes[name] = recipe
            self._count(members)
            out.append((members, recipes))
        return out


@VIEWS.register("global")
class GlobalViews(_CropViews):
    """Global crops (DeCLIP appendix B); policy `autoaugment` switches to FILIP's AutoAugment."""

    name = "global"
    prefix = "g"

    @classmethod
    def crop(cls, cfg: AugmentConfig) -> CropConfig:
        return cfg.image.global_views

    def policy(self) -> str:
        return self.cfg.image.policy


@VIEWS.register("local")
class LocalViews(_CropViews):
    """Small local crops (multi-crop, Caron et al. 2020; DeCLIP §3 multi-view supervision)."""

    name = "local"
    prefix = "l"

    @classmethod
    def crop(cls, cfg: AugmentConfig) -> CropConfig:
        return cfg.image.local_views


@VIEWS.register("eda")
class EdaViews(ViewKind):
    """EDA text views; each applies one operation drawn from `eda.ops` (DeCLIP appendix B)."""

    name = "eda"
    modality = "text"

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__(cfg)
        from augment.text.eda import Eda, WordNetSynonyms
        from augment.text.protect import Protector

        e = cfg.eda
        self.eda = Eda(WordNetSynonyms(), Protector(cfg.protected_tokens),
                       {"sr": e.alpha_sr, "ri": e.alpha_ri, "rs": e.alpha_rs, "rd": e.alpha_rd})

    @classmethod
    def names(cls, cfg: AugmentConfig) -> list[str]:
        return [f"eda{i}" for i in range(cfg.eda.views)]

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        return [f"{n}.txt" for n in cls.names(cfg)]

    def make(self, samples: list[Sample]) -> list[tuple[dict[str, bytes], dict[str, Any]]]:
        out = []
        for sample in samples:
            members, recipes = {}, {}
            for name in self.names(self.cfg):
                result = self.eda.choose_and_apply(sample["txt"], self.cfg.eda.ops, view_rng(sample["__key__"], self.cfg.seed, name))
                members[f"{name}.txt"] = result.text.encode("utf-8")
                recipes[name] = {"op": result.op, "changed": result.changed}
                self.stats[f"op_{result.op}"] += 1
            self._count(members)
            out.append((members, recipes))
        return out


@VIEWS.register("bt")
class BackTranslationViews(ViewKind):
    """Back-translation through each pivot (FILIP §3.2); identical/empty/lost outputs are not views."""

    name = "bt"
    modality = "text"

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__(cfg)
        from augment.text.backtranslate import BackTranslator
        from augment.text.protect import Protector
        from augment.text.translate import TRANSLATORS
        from augment.text.translate.cache import TranslationCache

        bt = cfg.backtranslation
        translator = TRANSLATORS.get(bt.backend)(
            batch_size=bt.batch_size, models=bt.marian_models, device=bt.marian_device, max_new_tokens=bt.marian_max_new_tokens
        )
        cache = TranslationCache(bt.cache_dir) if bt.use_cache else None
        self.bt = BackTranslator(translator, Protector(cfg.protected_tokens), cache)

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        return [f"bt.{p}.txt" for p in cfg.backtranslation.pivots]

    def make(self, samples: list[Sample]) -> list[tuple[dict[str, bytes], dict[str, Any]]]:
        out: list[tuple[dict[str, bytes], dict[str, Any]]] = [({}, {}) for _ in samples]
        texts = [s["txt"] for s in samples]
        for pivot in self.cfg.backtranslation.pivots:
            backend = self.bt.translator.identity(pivot)
            for (members, recipes), result in zip(out, self.bt.run(texts, pivot)):
                recipes[f"bt.{pivot}"] = {"backend": backend, "status": result.status, "cached": result.cached}
                self.stats[result.status] += 1
                self.stats["cached"] += result.cached
                if result.text is not None:
                    members[f"bt.{pivot}.txt"] = result.text.encode("utf-8")
        for members, _ in out:
            self._count(members)
        return out

    def close(self) -> None:
        self.bt.translator.close()
        if self.bt.cache:
            self.bt.cache.close()
