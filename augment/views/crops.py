"""Image crop views shared by `global` and `local`: RandomResizedCrop + photometric policy.

Each view's recipe (crop box, flip, jitter values and order, grayscale, blur sigma, or the
AutoAugment operations) is sampled from its own `view_rng` and applied by
`augment.image.recipes` (DeCLIP appendix B; FILIP §3.2 for `autoaugment`).
"""

from __future__ import annotations

from typing import ClassVar

from augment.config import AugmentConfig, CropConfig
from augment.image.recipes import SAMPLERS, apply_recipe
from augment.views.base import Made, Sample, ViewKind, encode_jpeg, source_image, view_rng


class CropViews(ViewKind):
    """`count` crops named `{prefix}0` .. `{prefix}{count-1}`, members `{name}.jpg`."""

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

    def make(self, samples: list[Sample]) -> Made:
        sampler = SAMPLERS[self.policy()]
        photo, quality = self.cfg.image.photometric, self.cfg.image.jpeg_quality
        out = []
        for sample in samples:
            image = source_image(sample)
            members, recipes = {}, {}
            for name in self.names(self.cfg):
                recipe = sampler(
                    view_rng(sample["__key__"], self.cfg.seed, name),
                    image.width,
                    image.height,
                    self.crop(self.cfg),
                    photo,
                )
                members[f"{name}.jpg"] = encode_jpeg(apply_recipe(image, recipe), quality)
                recipes[name] = recipe
            self._count(members)
            out.append((members, recipes))
        return out
