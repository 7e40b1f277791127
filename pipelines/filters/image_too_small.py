"""`image_too_small` (FILIP §3.1): shorter side of the original image below `min_size`.

Decided in the image stage only, on the original size img2dataset records (img2dataset gets
no size limit: `pipelines.stages.download.img2dataset_limits`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject


@register
class ImageTooSmall(Filter):
    name = "image_too_small"
    reason = "image_too_small"

    class Options(Config):
        min_size: int = Field(200, ge=0, description="least shorter side of the original, in pixels")

    scores = ("orig_width", "orig_height")

    def decide(self, scores: dict[str, Any]) -> Verdict:
        small = min(scores["orig_width"], scores["orig_height"]) < self.options.min_size
        return reject(self.reason) if small else True
