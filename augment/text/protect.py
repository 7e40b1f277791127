"""Special tokens (`<person>`, ...) that no text view may replace, move or delete."""

from __future__ import annotations

import re
from collections.abc import Sequence


class Protector:
    """Knows the protected tokens and swaps them for translator-safe placeholders and back.

    A placeholder is one capitalised letters-only word that no dictionary knows
    (`Zqxa`, `Zqxb`, ...): rule-based translators pass unknown words through unchanged, so
    the token keeps its place in the sentence (apertium treats it like a proper noun).
    """

    PREFIX = "Zqx"

    def __init__(self, tokens: Sequence[str]) -> None:
        if len(tokens) > 26:
            raise ValueError(f"at most 26 protected tokens, got {len(tokens)}")
        self.tokens = tuple(tokens)
        self._token_re = (
            re.compile("|".join(re.escape(t) for t in sorted(self.tokens, key=len, reverse=True))) if tokens else None
        )
        self._placeholder = {t: f"{self.PREFIX}{chr(ord('a') + i)}" for i, t in enumerate(self.tokens)}
        self._back = {p.lower(): t for t, p in self._placeholder.items()}
        self._placeholder_re = re.compile(rf"{self.PREFIX}([a-z])\b", re.IGNORECASE)

    def is_protected(self, word: str) -> bool:
        return self._token_re is not None and self._token_re.search(word) is not None

    def count(self, text: str) -> dict[str, int]:
        """How often each protected token occurs in `text`."""
        if self._token_re is None:
            return {}
        counts: dict[str, int] = {}
        for m in self._token_re.finditer(text):
            counts[m.group(0)] = counts.get(m.group(0), 0) + 1
        return counts

    def to_placeholders(self, text: str) -> str:
        if self._token_re is None:
            return text
        return self._token_re.sub(lambda m: self._placeholder[m.group(0)], text)

    def from_placeholders(self, text: str) -> str:
        if self._token_re is None:
            return text

        def back(m: re.Match[str]) -> str:
            return self._back.get(m.group(0).lower(), m.group(0))

        return self._placeholder_re.sub(back, text)
