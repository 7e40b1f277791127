"""`low_english_ratio` (DeCLIP appendix A): keep captions with at least `min_ratio` English words.

The ratio is `pipelines.filters.english.EnglishWords.ratio` of the caption after name
substitution (a name is not a non-English word); the row gets `english_ratio`.
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

    scores = ("english_ratio",)

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        """The ratio of the caption after name substitution (`scrubbed`, when the chain made one)."""
        if not self.words.ready:
            self.setup()
        return {"english_ratio": self.words.ratio(row.get("scrubbed", row["caption"]))}

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return True if scores["english_ratio"] >= self.options.min_ratio else reject(self.reason)
