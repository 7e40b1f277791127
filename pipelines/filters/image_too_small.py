"""`image_too_small` (FILIP §3.1): shorter side of the original image below `min_size`.

Also passed to img2dataset (`min_image_size`) by the download stage.
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

    def keep(self, row: dict[str, Any]) -> Verdict:
        return reject(self.reason) if min(row["orig_width"], row["orig_height"]) < self.options.min_size else True
