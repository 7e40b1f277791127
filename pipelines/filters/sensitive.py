"""`sensitive`: the caption contains a listed word — whole words, case-insensitive.

A list entry of several words ("adult content") matches that phrase with any whitespace.

Speed: one regex over the caption decides. When every entry's first word is ASCII letters
only, a match in an ASCII caption holds that first word as a whole word (it stands between
non-word characters), so an ASCII caption none of whose words (`english.lower_words`, already
split for the other checks) is a first word cannot match, and the regex runs on few. A
non-ASCII caption always runs it: under IGNORECASE "ſex" (long s) matches "sex".
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject
from pipelines.filters.english import lower_words

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
        firsts = frozenset(w.split()[0] for w in words)
        # the first words, when a match needs one of them as a whole word of an ASCII caption
        self._first_words = firsts if words and all(w.isascii() and w.isalpha() for w in firsts) else None

    scores = ("sensitive",)
    rescore_options = frozenset({"words"})

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"sensitive": self.matches(row["caption"])}

    def matches(self, caption: str) -> bool:
        """A listed word or phrase occurs in `caption` (module docstring)."""
        if self._pattern is None:
            return False
        if self._first_words is not None and caption.isascii() and self._first_words.isdisjoint(lower_words(caption)):
            return False
        return self._pattern.search(caption) is not None

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return reject(self.reason) if scores["sensitive"] else True
