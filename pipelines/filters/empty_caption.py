"""`empty_caption` (DeCLIP appendix A drops empty texts): nothing left after cleaning."""

from __future__ import annotations

from typing import Any

from pipelines.filters.base import Filter, Verdict, register, reject


@register
class EmptyCaption(Filter):
    name = "empty_caption"
    reason = "empty_caption"

    def keep(self, row: dict[str, Any]) -> Verdict:
        return True if row.get("caption") else reject(self.reason)
