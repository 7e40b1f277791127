"""`aspect_ratio` (FILIP §3.1): long side / short side of the original image above `max_ratio`.

Also passed to img2dataset (`max_aspect_ratio`) by the download stage.
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

    def keep(self, row: dict[str, Any]) -> Verdict:
        short, long = sorted((row["orig_width"], row["orig_height"]))
        if short <= 0 or long / short > self.options.max_ratio:
            return reject(self.reason)
        return True
