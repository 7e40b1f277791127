"""`repeated_caption` (FILIP §3.1): the normalised caption occurs more than `limit` times
in the whole input (spam, boilerplate such as "click here to see the full size picture").

A whole-input check: the text stage counts `clean.caption_repeat_key` over every input
row (a refresh: over its whole source list) and gives each row that passed the per-row
text filters its `repeat_count`; this filter answers on that count.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject

DEFAULT_LIMIT = 10


@register
class RepeatedCaption(Filter):
    name = "repeated_caption"
    reason = "repeated_caption"
    whole_input = True

    class Options(Config):
        limit: int = Field(DEFAULT_LIMIT, ge=1, description="most rows one normalised caption may have")

    scores = ("repeat_count",)

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return True if scores["repeat_count"] <= self.options.limit else reject(self.reason)
