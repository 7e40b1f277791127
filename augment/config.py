"""`AugmentConfig`: the typed `augment:` section (views, sizes, probabilities, pivots, backend, seed).

Defaults follow DeCLIP appendix B (image policy, EDA with one of three operations per view)
and FILIP §3.2 (back-translation; AutoAugment as the alternative image policy).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from catalog.config import Config

EdaOp = Literal["sr", "ri", "rs", "rd"]


class CropConfig(Config):
    """RandomResizedCrop parameters of one group of image views."""

    count: int = Field(ge=0)
    size: int = Field(gt=0)
    scale: tuple[float, float]
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @model_validator(mode="after")
    def _ordered(self) -> CropConfig:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        return self


class PhotometricConfig(Config):
    """DeCLIP's colour policy (appendix B); blur probability after MoCo v2 / SimSiam (0.5)."""

    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = Field(0.8, ge=0, le=1)
    grayscale_p: float = Field(0.2, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = Field(0.5, ge=0, le=1)
    flip_p: float = Field(0.5, ge=0, le=1)


class ImageViewsConfig(Config):
    policy: Literal["declip", "autoaugment"] = (
        "declip"  # autoaugment: crop + flip + AutoAugment ImageNet policy (FILIP §3.2)
    )
    global_views: CropConfig = CropConfig(count=2, size=224, scale=(0.2, 1.0))
    local_views: CropConfig = CropConfig(count=4, size=96, scale=(0.05, 0.4))
    photometric: PhotometricConfig = PhotometricConfig()
    jpeg_quality: int = Field(90, ge=1, le=100)


class EdaConfig(Config):
    """EDA (Wei & Zou 2019): each view applies one operation drawn from `ops` (DeCLIP: sr, rs, rd)."""

    views: int = Field(2, ge=0)
    ops: list[EdaOp] = ["sr", "rs", "rd"]
    alpha_sr: float = Field(0.1, ge=0, le=1)
    alpha_ri: float = Field(0.1, ge=0, le=1)
    alpha_rs: float = Field(0.1, ge=0, le=1)
    alpha_rd: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _some_op(self) -> EdaConfig:
        if self.views and not self.ops:
            raise ValueError("ops must name at least one of sr, ri, rs, rd")
        return self


class BackTranslationConfig(Config):
    """Back-translation (FILIP §3.2): eng -> pivot -> eng through a pluggable translator."""

    backend: Literal["apertium", "marian"] = "apertium"
    pivots: list[str] = ["spa", "cat"]
    # marian: "SRC-TGT" -> local model dir or hub name, e.g. {"eng-deu": "Helsinki-NLP/opus-mt-en-de", ...}
    marian_models: dict[str, str] = {}
    marian_device: str = "cpu"
    marian_max_new_tokens: int = Field(96, gt=0)
    batch_size: int = Field(2000, gt=0)  # captions per apertium run / marian generate call
    cache_dir: Optional[str] = None  # None: $LIPFORGE_CACHE/augment (a local directory)
    use_cache: bool = True


class AugmentConfig(Config):
    """The `augment:` section. `views` lists registered view kinds (see `augment.views.VIEWS`)."""

    views: list[str] = ["global", "local", "eda", "bt"]
    seed: int = 0
    protected_tokens: list[str] = ["<person>"]
    image: ImageViewsConfig = ImageViewsConfig()
    eda: EdaConfig = EdaConfig()
    backtranslation: BackTranslationConfig = BackTranslationConfig()
    num_workers: Optional[int] = Field(None, gt=0)  # Ray actors; None: one per cluster CPU

    @model_validator(mode="after")
    def _known_views(self) -> AugmentConfig:
        from augment.views import VIEWS

        unknown = [v for v in self.views if v not in VIEWS]
        if unknown:
            raise ValueError(f"unknown view kinds {unknown}; known: {', '.join(VIEWS.names())}")
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"views listed twice: {self.views}")
        return self
