"""`aspect_ratio` (FILIP §3.1): long side / short side of the original image above `max_ratio`.

Decided in the image stage only, on the original size img2dataset records (img2dataset gets
no ratio limit: `pipelines.stages.download.img2dataset_limits`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject


@register
class AspectRatio(Filter):
    name = "aspect_ratio"
    reason = "aspect_ratio"

    class Options(Config):
        max_ratio: float = Field(3.0, ge=1.0, description="most long side / short side of the original")

    scores = ("orig_width", "orig_height")

    def decide(self, scores: dict[str, Any]) -> Verdict:
        short, long = sorted((scores["orig_width"], scores["orig_height"]))
        if short <= 0 or long / short > self.options.max_ratio:
            return reject(self.reason)
        return True
