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

Speed (the text chain splits and counts every caption; outputs are those of the plain
definitions above, pinned by tests):
- `caption_words` (the `WORD` split) and `lower_words` (the same words in lower case), read
  by the person-name gate and most checks, keep the last `WORDS_CACHE` captions' splits, and
  `EnglishWords` the last captions' counted words (`not_english` and `low_english_ratio`
  both take the ratio of the scrubbed caption). The chain runs in batches of a few hundred
  rows, so each caption is split and counted once;
- on ASCII text `WORD` is `[A-Za-z]+`, so a byte table that blanks every other byte
  (`ASCII_WORDS`, `ASCII_LOWER_WORDS`) and `str.split` give the same words without the
  regex engine;
- a caption whose every word is in the vocabulary (most real captions) is counted with one
  set operation: no word is skipped as a name, since only non-English words are.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from catalog import assets

WORD = re.compile(r"[^\W\d_]+")
# Placeholder tokens the person-name substitution writes (`filter.person_placeholder`).
PLACEHOLDER = re.compile(r"<[^\W\d]+>|\[[^\W\d]+\]")
WORDS_CACHE = 4096  # captions whose word split / counted words are kept (several text-chain batches)


def _byte_table(keep: dict[int, int]) -> bytes:
    return bytes(keep.get(b, 32) for b in range(256))


_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ASCII_WORDS = _byte_table({b: b for b in _LETTERS})  # every byte but a letter -> space
ASCII_LOWER_WORDS = _byte_table({b: ord(chr(b).lower()) for b in _LETTERS})


@functools.lru_cache(maxsize=WORDS_CACHE)
def caption_words(caption: str) -> tuple[str, ...]:
    """`WORD.findall(caption)`, memoised (module docstring)."""
    if caption.isascii():
        return tuple(caption.encode("ascii").translate(ASCII_WORDS).decode("ascii").split())
    return tuple(WORD.findall(caption))


@functools.lru_cache(maxsize=WORDS_CACHE)
def lower_words(caption: str) -> tuple[str, ...]:
    """Each of `caption_words(caption)` in lower case, memoised (module docstring)."""
    if caption.isascii():
        return tuple(caption.encode("ascii").translate(ASCII_LOWER_WORDS).decode("ascii").split())
    return tuple(word.lower() for word in caption_words(caption))


def _titlecase(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or word[1:].islower())


class EnglishWords:
    """English-word lookups (loaded once per worker by `setup`)."""

    def __init__(self) -> None:
        self._vocab: frozenset[str] | None = None
        self._morphy_cache: dict[str, bool] = {}
        self._common: frozenset[str] = frozenset()
        self._wn: Any = None
        self._counted: dict[str, tuple[tuple[str, ...], tuple[bool, ...] | None]] = {}

    def setup(self) -> None:
        if self._vocab is None:
            self._wn = assets.wordnet_index()
            lemmas = (n for n in self._wn.lemmas() if "_" not in n and "-" not in n)
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
        lows, english = self._counted_words(caption)
        return [(low, True) for low in lows] if english is None else list(zip(lows, english))

    def _counted_words(self, caption: str) -> tuple[tuple[str, ...], tuple[bool, ...] | None]:
        """The counted words in lower case and whether each is English (None: every one is), memoised."""
        counted = self._counted.get(caption)
        if counted is None:
            if len(self._counted) >= WORDS_CACHE:
                self._counted.clear()
            counted = self._counted[caption] = self._count(caption)
        return counted

    def _count(self, caption: str) -> tuple[tuple[str, ...], tuple[bool, ...] | None]:
        assert self._vocab is not None, "EnglishWords.setup() not called"
        if "<" in caption or "[" in caption:
            caption = PLACEHOLDER.sub(" ", caption)
            words: Any = WORD.findall(caption)
            lows: Any = tuple(word.lower() for word in words)
        else:
            words, lows = caption_words(caption), lower_words(caption)
        if self._vocab.issuperset(lows):
            return lows, None
        counted: list[str] = []
        english: list[bool] = []
        for i, (word, low) in enumerate(zip(words, lows)):
            hit = self.is_english(low)
            if not hit and _titlecase(word):
                after_first = i > 0
                name_pair = i + 1 < len(words) and _titlecase(words[i + 1])
                if after_first or name_pair:
                    continue
            counted.append(low)
            english.append(hit)
        return tuple(counted), tuple(english)

    def ratio(self, caption: str, foreign_function_words: frozenset[str] = frozenset()) -> float:
        """Share of counted words that are English; 0.0 when no word counts."""
        lows, english = self._counted_words(caption)
        if not lows:
            return 0.0
        if english is None:
            hits = len(lows) - sum(map(foreign_function_words.__contains__, lows))
        else:
            hits = sum(1 for low, hit in zip(lows, english) if hit and low not in foreign_function_words)
        return hits / len(lows)


@functools.cache
def english_words() -> EnglishWords:
    """The process's one EnglishWords, shared by the filters that need it (one vocabulary per worker)."""
    return EnglishWords()
