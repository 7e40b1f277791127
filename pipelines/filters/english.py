"""English-word lookups shared by `not_english` and `low_english_ratio` (not a filter).

English-word ratio: the share of a caption's words that are English words. A word is
English when it is
- an English stop word (spaCy's list: WordNet has no function words),
- a WordNet lemma, trying `morphy` (inflections: "geese" -> "goose") only on misses, where
  the base must be a lemma WordNet writes in lower case: "chicos" -> "Chico" (a Californian
  city) does not make a Spanish word English,
- or in wordfreq's English list (`catalog.assets.wordfreq_english_words`: Zipf >= 2.0, words
  much more frequent in another Latin-script language left out), which knows the modern and
  compound words WordNet 3.0 lacks: "selfie", "waterskiing", "wetsuit", "hoodie", "atvs".
The chain computes the ratio on the caption AFTER person-name substitution, so:
- a placeholder token (`<person>`, or any `<word>` / `[word]` token such as `[NAME]`) is not
  a word at all: the "person" inside `<person>` would otherwise count as English and lift
  a foreign caption's ratio;
- capitalised words that are not English words and look like names ("Lopez" after the
  first word, or "Pedro Garcia" at the start) are not counted either way: a name that the
  substitution left is not a non-English word.
Words that wordfreq's English list shares with Romance/Germanic function words ("de", "la",
"die") are still English here; `not_english` passes them as `foreign_function_words`, which
count as not English.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from catalog import assets

WORD = re.compile(r"[^\W\d_]+")
# Placeholder tokens the person-name substitution writes (`filter.person_placeholder`).
PLACEHOLDER = re.compile(r"<[^\W\d]+>|\[[^\W\d]+\]")


def _titlecase(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or word[1:].islower())


class EnglishWords:
    """English-word lookups (loaded once per worker by `setup`)."""

    def __init__(self) -> None:
        self._vocab: frozenset[str] | None = None
        self._morphy_cache: dict[str, bool] = {}
        self._common: frozenset[str] = frozenset()
        self._wn: Any = None

    def setup(self) -> None:
        if self._vocab is None:
            self._wn = assets.wordnet()
            lemmas = (n for n in self._wn.all_lemma_names() if "_" not in n and "-" not in n)
            self._vocab = frozenset(lemmas) | assets.stop_words() | assets.wordfreq_english_words()
            self._common = assets.wordnet_common_words()

    @property
    def ready(self) -> bool:
        return self._vocab is not None

    def is_english(self, word: str) -> bool:
        """`word` (lower case) is a stop word, a wordfreq English word or a WordNet lemma (directly or through morphy)."""
        assert self._vocab is not None, "EnglishWords.setup() not called"
        if word in self._vocab:
            return True
        hit = self._morphy_cache.get(word)
        if hit is None:
            base = self._wn.morphy(word)
            hit = base is not None and base in self._common
            if len(self._morphy_cache) < 200_000:
                self._morphy_cache[word] = hit
        return hit

    def counted_words(self, caption: str) -> list[tuple[str, bool]]:
        """(lower-case word, is English) for each word that counts (placeholders and names skipped)."""
        if "<" in caption or "[" in caption:
            caption = PLACEHOLDER.sub(" ", caption)
        words = WORD.findall(caption)
        out: list[tuple[str, bool]] = []
        for i, word in enumerate(words):
            low = word.lower()
            english = self.is_english(low)
            if not english and _titlecase(word):
                after_first = i > 0
                name_pair = i + 1 < len(words) and _titlecase(words[i + 1])
                if after_first or name_pair:
                    continue
            out.append((low, english))
        return out

    def ratio(self, caption: str, foreign_function_words: frozenset[str] = frozenset()) -> float:
        """Share of counted words that are English; 0.0 when no word counts."""
        counted = self.counted_words(caption)
        if not counted:
            return 0.0
        hits = sum(1 for low, english in counted if english and low not in foreign_function_words)
        return hits / len(counted)


@functools.cache
def english_words() -> EnglishWords:
    """The process's one EnglishWords, shared by the filters that need it (one vocabulary per worker)."""
    return EnglishWords()
