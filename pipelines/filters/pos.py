"""`single_pos` (DeCLIP appendix A): drop captions whose words are all one part of speech.

Lists of words ("red blue green", "dog cat bird") carry no relations between objects.
spaCy's tagger (tok2vec + tagger + attribute_ruler for `pos_`, run with `nlp.pipe`) is
used, with two corrections measured on such lists, where the tagger has no syntax to go on:
- PROPN counts as NOUN ("dog cat bird" is tagged PROPN PROPN NOUN);
- a word tagged NOUN or ADJ may also count as the other one when WordNet lists it as both
  ("red blue green" is tagged PROPN PROPN NOUN, but all three are WordNet adjectives).
A caption is single_pos when one part of speech fits every word. Only alphabetic tokens
count, and captions with fewer than `single_pos_min_words` (default 2) words are kept: one
word has one part of speech by definition; "blue purple" and "small tiny" are lists.

Speed: a caption holding an unambiguous function word ("a", "the", "of", "with" ...: only
ever DET/ADP/CCONJ/AUX/PRON) and a word that is not a stop word (a content word, never one
of those) has two parts of speech whatever the tagger says, so spaCy only sees the rest —
almost no real caption (the tagger alone runs at ~2,000 captions/s/core).
"""

from __future__ import annotations

import re
from typing import Any

from pipelines import assets
from pipelines.filters.base import FILTERS, Filter, Verdict, reject
from pipelines.filters.config import TextFilterConfig

TAGGER = ("tok2vec", "tagger", "attribute_ruler")
_NOUN_ADJ = frozenset({"NOUN", "ADJ"})
_WN_POS = {"NOUN": "n", "ADJ": "a"}
FUNCTION_WORDS = frozenset(
    "a an the of in on with and at from by into onto is are was were his her their its this these those "
    "he she they or".split()
)
_WORD = re.compile(r"[^\W\d_]+")


@FILTERS.register("single_pos")
class SinglePos(Filter):
    name = "single_pos"
    reason = "single_pos"

    def __init__(self, config: TextFilterConfig | None = None) -> None:
        self.config = config or TextFilterConfig()
        self._nlp: Any = None
        self._wn: Any = None
        self._wn_cache: dict[tuple[str, str], bool] = {}

    def setup(self) -> None:
        self._nlp = assets.spacy_nlp(TAGGER)
        self._wn = assets.wordnet()
        self._stop = assets.stop_words()

    def surely_mixed(self, caption: str) -> bool:
        """True when the caption has a function word and a content word (see the module docstring)."""
        words = {w.lower() for w in _WORD.findall(caption)}
        return not words.isdisjoint(FUNCTION_WORDS) and not words <= self._stop

    def _wordnet_has(self, word: str, pos: str) -> bool:
        key = (word, pos)
        hit = self._wn_cache.get(key)
        if hit is None:
            hit = bool(self._wn.synsets(word, pos=_WN_POS[pos]))
            if len(self._wn_cache) < 200_000:
                self._wn_cache[key] = hit
        return hit

    def _possible(self, token: Any) -> set[str]:
        pos = "NOUN" if token.pos_ == "PROPN" else token.pos_
        if pos not in _NOUN_ADJ:
            return {pos}
        word = token.lower_
        return {pos} | {other for other in _NOUN_ADJ - {pos} if self._wordnet_has(word, other)}

    def is_single_pos(self, doc: Any) -> bool:
        words = [t for t in doc if t.is_alpha]
        if len(words) < self.config.single_pos_min_words:
            return False
        common = self._possible(words[0])
        for token in words[1:]:
            common &= self._possible(token)
            if not common:
                return False
        return True

    def keep_batch(self, rows: list[dict[str, Any]]) -> list[Verdict]:
        if self._nlp is None:
            self.setup()
        out: list[Verdict] = [True] * len(rows)
        todo = [i for i, row in enumerate(rows) if not self.surely_mixed(row["caption"])]
        docs = self._nlp.pipe((rows[i]["caption"] for i in todo), batch_size=self.config.spacy_batch_size)
        for i, doc in zip(todo, docs):
            if self.is_single_pos(doc):
                out[i] = reject(self.reason)
        return out

    def keep(self, row: dict[str, Any]) -> Verdict:
        return self.keep_batch([row])[0]
