"""`sensitive`: the caption contains a listed word — whole words, case-insensitive.

A list entry of several words ("adult content") matches that phrase with any whitespace.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject

# A deliberately small default list (explicit sexual / pornographic terms); replace it in
# the YAML (`filter.checks.sensitive.words`) with the list your data policy requires.
DEFAULT_SENSITIVE_WORDS: tuple[str, ...] = (
    "porn",
    "porno",
    "pornography",
    "pornographic",
    "xxx",
    "nsfw",
    "hentai",
    "nude",
    "nudes",
    "nudity",
    "erotic",
    "sex",
    "blowjob",
    "masturbation",
    "masturbating",
)


@register
class SensitiveWords(Filter):
    name = "sensitive"
    reason = "sensitive"

    class Options(Config):
        words: list[str] = Field(
            default_factory=lambda: list(DEFAULT_SENSITIVE_WORDS), description="words and phrases that reject a caption"
        )

    def __init__(self, options: Config | dict[str, Any] | None = None, settings: Any = None) -> None:
        super().__init__(options, settings)
        words = sorted({w.strip().lower() for w in self.options.words if w.strip()}, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(r"\s+".join(map(re.escape, w.split())) for w in words) + r")(?!\w)",
                re.IGNORECASE,
            )
            if words
            else None
        )

    scores = ("sensitive",)
    rescore_options = frozenset({"words"})

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"sensitive": bool(self._pattern is not None and self._pattern.search(row["caption"]))}

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return reject(self.reason) if scores["sensitive"] else True
