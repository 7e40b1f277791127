"""`global`: global crops `g0.jpg`, `g1.jpg` (DeCLIP appendix B; policy `autoaugment`: FILIP §3.2).

Members: `g{i}.jpg` for i < `image.global_views.count`. Recipe: crop box, flip, jitter
values/order, grayscale, blur sigma (or the AutoAugment operations).
"""

from __future__ import annotations

from augment.config import AugmentConfig, CropConfig
from augment.views.base import VIEWS
from augment.views.crops import CropViews


@VIEWS.register("global")
class GlobalViews(CropViews):
    """Global crops (DeCLIP appendix B); policy `autoaugment` switches to FILIP's AutoAugment."""

    name = "global"
    prefix = "g"

    @classmethod
    def crop(cls, cfg: AugmentConfig) -> CropConfig:
        return cfg.image.global_views

    def policy(self) -> str:
        return self.cfg.image.policy
