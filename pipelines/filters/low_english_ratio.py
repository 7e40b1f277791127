"""`low_english_ratio` (DeCLIP appendix A): keep captions with at least `min_ratio` English words.

The ratio is `pipelines.filters.english.EnglishWords.ratio`; the row gets `english_ratio`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject
from pipelines.filters.english import EnglishWords, english_words


@register
class LowEnglishRatio(Filter):
    name = "low_english_ratio"
    reason = "low_english_ratio"

    class Options(Config):
        min_ratio: float = Field(0.8, ge=0.0, le=1.0, description="least share of English words (DeCLIP: 0.8)")

    def __init__(
        self, options: Config | dict[str, Any] | None = None, settings: Any = None, words: EnglishWords | None = None
    ) -> None:
        super().__init__(options, settings)
        self.words = words or english_words()

    def setup(self) -> None:
        self.words.setup()

    def keep(self, row: dict[str, Any]) -> Verdict:
        if not self.words.ready:
            self.setup()
        ratio = self.words.ratio(row["caption"])
        row["english_ratio"] = round(ratio, 4)
        return True if ratio >= self.options.min_ratio else reject(self.reason)
