"""`empty_caption` (DeCLIP appendix A drops empty texts): nothing left after cleaning."""

from __future__ import annotations

from typing import Any

from pipelines.filters.base import Filter, Verdict, register, reject


@register
class EmptyCaption(Filter):
    name = "empty_caption"
    reason = "empty_caption"

    scores = ("caption_empty",)

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"caption_empty": not row.get("caption")}

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return reject(self.reason) if scores["caption_empty"] else True
