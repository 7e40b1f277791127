"""`local`: small local crops `l0.jpg` … `l{K-1}.jpg` (multi-crop, Caron et al. 2020; DeCLIP §3).

Members: `l{i}.jpg` for i < `image.local_views.count` (96 px crops of scale (0.05, 0.4) by
default). Recipe: as `global`, always with the DeCLIP photometric policy.
"""

from __future__ import annotations

from augment.config import AugmentConfig, CropConfig
from augment.views.base import VIEWS
from augment.views.crops import CropViews


@VIEWS.register("local")
class LocalViews(CropViews):
    """Small local crops (multi-crop, Caron et al. 2020; DeCLIP §3 multi-view supervision)."""

    name = "local"
    prefix = "l"

    @classmethod
    def crop(cls, cfg: AugmentConfig) -> CropConfig:
        return cfg.image.local_views
