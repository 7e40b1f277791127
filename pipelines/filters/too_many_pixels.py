"""`too_many_pixels`: width x height of the original image above `max_pixels`.

The download stage reads the size from the header before any decode
(`pipelines.stages.probe`) and passes `max_pixels` to img2dataset; the image stage checks
the recorded original size again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject


@register
class TooManyPixels(Filter):
    name = "too_many_pixels"
    reason = "too_many_pixels"

    class Options(Config):
        max_pixels: int = Field(100_000_000, gt=0, description="most pixels (width x height) of the original")

    scores = ("orig_width", "orig_height")

    def decide(self, scores: dict[str, Any]) -> Verdict:
        large = scores["orig_width"] * scores["orig_height"] > self.options.max_pixels
        return reject(self.reason) if large else True
