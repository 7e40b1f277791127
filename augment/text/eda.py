"""EDA: easy data augmentation for text (Wei & Zou, 2019), as DeCLIP uses it (appendix B).

Four operations on the words of a caption, each with its own alpha:
- sr: replace n = max(1, alpha * words) non-stop words by a random WordNet synonym;
- ri: insert a synonym of a random non-stop word at a random position, n times;
- rs: swap two random words, n times;
- rd: delete each word with probability alpha (at least one word survives).
A view applies ONE operation drawn from the configured set (DeCLIP: sr, rs, rd).

Tokens are whitespace-separated. Only word tokens (containing a letter or digit) take part;
punctuation keeps its place. Protected tokens (`<person>`) are never replaced, swapped,
deleted or used as an insertion anchor, and nothing is swapped into their position.
Randomness comes from the `random.Random` the caller passes (seeded per sample and view).

nlpaug's RandomWordAug is not used for swap/delete: its swap exchanges a chosen word with a
neighbour even when the neighbour is a protected token, it draws from the global `random`
state (so a view is not a function of its own seed); bench/augment.py prints its speed
beside these operations (this swap/delete is ~3x faster).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from augment.text.protect import Protector
from catalog import assets

_WORDLIKE = re.compile(r"\w")
_SYNONYM_OK = re.compile(r"^[A-Za-z][A-Za-z' -]*$")


class WordNetSynonyms:
    """Single-word-or-phrase WordNet synonyms of a word, through NLTK's reader on the project's copy.

    Without `wordnet`, the prepared copy (`catalog.assets.wordnet()`): whoever runs views on a
    fresh machine (the augment job, on each worker) calls `catalog.assets.prepare()` first.
    """

    def __init__(self, wordnet: Any | None = None, stop_words: frozenset[str] | None = None) -> None:
        self.wn = wordnet if wordnet is not None else assets.wordnet()
        self.stop_words = stop_words if stop_words is not None else assets.stop_words()
        self.lookup: Callable[[str], tuple[str, ...]] = functools.lru_cache(maxsize=200_000)(self._lookup)

    def _lookup(self, word: str) -> tuple[str, ...]:
        low = word.lower()
        if low in self.stop_words or not low.isalpha():
            return ()
        found: dict[str, None] = {}
        for synset in self.wn.synsets(low):
            for lemma in synset.lemma_names():
                name = lemma.replace("_", " ")
                if name.lower() != low and _SYNONYM_OK.match(name):
                    found[name] = None
        return tuple(found)


@dataclass(frozen=True)
class EdaResult:
    text: str
    op: str
    changed: int  # words replaced / inserted / swap pairs / deleted


class Eda:
    """The four EDA operations over whitespace tokens, protected tokens untouched."""

    OPS = ("sr", "ri", "rs", "rd")

    def __init__(self, synonyms: WordNetSynonyms, protector: Protector, alphas: dict[str, float]) -> None:
        unknown = set(alphas) - set(self.OPS)
        if unknown:
            raise ValueError(f"EDA alphas for unknown operations {sorted(unknown)}; known: {', '.join(self.OPS)}")
        self.synonyms = synonyms
        self.protector = protector
        self.alphas = {op: alphas.get(op, 0.1) for op in self.OPS}

    def _movable(self, tokens: Sequence[str]) -> list[int]:
        """Indices of word tokens that may change (not punctuation, not protected)."""
        return [i for i, t in enumerate(tokens) if _WORDLIKE.search(t) and not self.protector.is_protected(t)]

    def _n(self, op: str, n_words: int) -> int:
        return max(1, int(self.alphas[op] * n_words))

    def apply(self, text: str, op: str, rng: random.Random) -> EdaResult:
        tokens = text.split()
        fn = {
            "sr": self.synonym_replacement,
            "ri": self.random_insertion,
            "rs": self.random_swap,
            "rd": self.random_deletion,
        }
        if op not in fn:
            raise ValueError(f"unknown EDA operation {op!r}; known: {', '.join(self.OPS)}")
        out, changed = fn[op](tokens, rng)
        return EdaResult(" ".join(out), op, changed)

    def choose_and_apply(self, text: str, ops: Sequence[str], rng: random.Random) -> EdaResult:
        """DeCLIP: one operation drawn uniformly from `ops`, then applied."""
        return self.apply(text, rng.choice(list(ops)), rng)

    def synonym_replacement(self, tokens: list[str], rng: random.Random) -> tuple[list[str], int]:
        movable = self._movable(tokens)
        n = self._n("sr", len(movable))
        out = list(tokens)
        rng.shuffle(movable)
        changed = 0
        for i in movable:
            word, lead, trail = _strip(tokens[i])
            options = self.synonyms.lookup(word)
            if not options:
                continue
            synonym = rng.choice(options)
            if word[:1].isupper():
                synonym = synonym[:1].upper() + synonym[1:]
            out[i] = lead + synonym + trail
            changed += 1
            if changed >= n:
                break
        return out, changed

    def random_insertion(self, tokens: list[str], rng: random.Random) -> tuple[list[str], int]:
        movable = self._movable(tokens)
        n = self._n("ri", len(movable))
        out = list(tokens)
        changed = 0
        for _ in range(10 * n):
            if changed >= n or not movable:
                break
            word = _strip(tokens[rng.choice(movable)])[0]
            options = self.synonyms.lookup(word)
            if not options:
                continue
            out.insert(rng.randint(0, len(out)), rng.choice(options).lower())
            changed += 1
        return out, changed

    def random_swap(self, tokens: list[str], rng: random.Random) -> tuple[list[str], int]:
        movable = self._movable(tokens)
        if len(movable) < 2:
            return list(tokens), 0
        n = self._n("rs", len(movable))
        out = list(tokens)
        for _ in range(n):
            a, b = rng.sample(movable, 2)
            out[a], out[b] = out[b], out[a]
        return out, n

    def random_deletion(self, tokens: list[str], rng: random.Random) -> tuple[list[str], int]:
        movable = set(self._movable(tokens))
        if len(movable) < 2:
            return list(tokens), 0
        p = self.alphas["rd"]
        deleted = {i for i in sorted(movable) if rng.random() < p}
        if deleted == movable:  # keep one word, as EDA does
            deleted.discard(rng.choice(sorted(movable)))
        return [t for i, t in enumerate(tokens) if i not in deleted], len(deleted)


def _strip(token: str) -> tuple[str, str, str]:
    """'dog,' -> ('dog', '', ','): the word and the punctuation around it."""
    m = re.match(r"^(\W*)(.*?)(\W*)$", token)
    assert m is not None
    return m.group(2), m.group(1), m.group(3)
