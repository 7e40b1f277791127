"""`single_pos` (DeCLIP appendix A): drop captions whose words are all one part of speech.

Lists of words ("red blue green", "dog cat bird") carry no relations between objects.
spaCy's tagger (tok2vec + tagger + attribute_ruler for `pos_`, run with `nlp.pipe`) is
used, with two corrections measured on such lists, where the tagger has no syntax to go on:
- PROPN counts as NOUN ("dog cat bird" is tagged PROPN PROPN NOUN);
- a content word (not a stop word) may also count as a noun or an adjective when WordNet
  lists it as one ("red blue green" is tagged PROPN PROPN NOUN, but all three are WordNet
  adjectives; in "hexagons triangles" and "black pink green" the tagger guesses VERB for
  "triangles" and ADV for "pink"). Stop words ("two", "more", "our") keep the tagger's tag.
  A word tagged as a verb keeps its verb reading alone when it is one even in a list:
  * a past tense or participle (VBD, VBG, VBN: "man running", "dog jumped");
  * a present tense right after a noun it agrees with (VBZ after a singular noun: "Man
    scales rock"; VBP after a plural noun: "dogs run") whose form fits the tag (WordNet's
    verb morphology: VBZ an inflected form, VBP a base form; "stars" tagged VBP in "hearts
    stars triangles" is not). The noun's number comes from the tag for NNS/NNPS and from
    WordNet for NN/NNP (the tagger calls "stars" NNP in "stars circles hearts"): plural
    when WordNet's morphology reduces it to another noun ("stars" -> "star", "men" -> "man").
  A base form, or a present tense with no such noun ("hexagons triangles": VBZ after a
  plural), doubles as a noun or adjective.
A caption is single_pos when one part of speech fits every word (scores: `pos`, the parts
of speech that fit every word, and `pos_words`, how many words were counted). Only alphabetic tokens
count, and captions with fewer than `min_words` (default 2) words are kept: one
word has one part of speech by definition; "blue purple" and "small tiny" are lists.

Speed: a caption holding an unambiguous function word ("a", "the", "of", "with" ...: only
ever DET/ADP/CCONJ/AUX/PRON) and a word that is not a stop word (a content word, never one
of those) has two parts of speech whatever the tagger says, so spaCy only sees the rest —
1.5% of real captions (the tagger runs at ~2,000 captions/s/core). Of that cost the
attribute ruler (the rules giving `pos_` from `tag_` and the word) is a third: its Matcher
runs every one of its 179 patterns on every token. Its patterns that give an alphabetic
token's `pos_` in this pipeline look at one token's TAG and LOWER only (the others test a
dependency label, never set without a parser, or whitespace), so `pos_rules` reads them
into a table and `_pos` gives the ruler's `pos_` (the last matching pattern's, in the
ruler's order) from (`tag_`, `lower_`), cached; the ruler is not run (a test compares the
two on every token of the real captions). A model whose ruler has other patterns runs it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog import assets
from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject
from pipelines.filters.config import FilterConfig
from pipelines.filters.english import caption_words, lower_words

TAGGER = ("tok2vec", "tagger", "attribute_ruler")
_NOUN_ADJ = ("NOUN", "ADJ")
_VERB_FORMS = frozenset({"VBD", "VBG", "VBN"})
_SUBJECT_NUMBER = {"VBZ": "singular", "VBP": "plural"}
_WN_POS = {"NOUN": "n", "ADJ": "a"}
FUNCTION_WORDS = frozenset(
    "a an the of in on with and at from by into onto is are was were his her their its this these those "
    "he she they or".split()
)


def _passes(spec: Any, value: Any) -> bool:
    """A Matcher token test (a value, or {"IN": [...]} / {"NOT_IN": [...]}) on one attribute value."""
    if isinstance(spec, dict):
        return ("IN" not in spec or value in spec["IN"]) and ("NOT_IN" not in spec or value not in spec["NOT_IN"])
    return value == spec


def pos_rules(patterns: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]] | None:
    """The attribute ruler's patterns that can set an alphabetic token's `pos_` here, as
    ({"TAG"/"LOWER": test}, POS) in the ruler's order; None when one is beyond that form.

    Without a parser every token's DEP is "", and an alphabetic token is no space: a pattern
    token whose DEP or IS_SPACE test fails on those never matches. What is left must be one
    token testing TAG and LOWER only; a pattern that can match one and sets TAG is beyond.
    """
    rules: list[tuple[dict[str, Any], str]] = []
    for entry in patterns:
        attrs = entry["attrs"]
        for pattern in entry["patterns"]:
            if any(
                not _passes(tok.get("DEP", ""), "") or not _passes(tok.get("IS_SPACE", False), False) for tok in pattern
            ):
                continue
            if "TAG" in attrs:
                return None
            if "POS" not in attrs:
                continue
            test = {k: v for k, v in pattern[0].items() if k not in ("DEP", "IS_SPACE")}
            supported = all(not isinstance(v, dict) or set(v) <= {"IN", "NOT_IN"} for v in test.values())
            if len(pattern) != 1 or not set(test) <= {"TAG", "LOWER"} or not supported:
                return None
            rules.append((test, attrs["POS"]))
    return rules


@register
class SinglePos(Filter):
    """Every word fits one part of speech (module docstring); spaCy batches of `filter.spacy_batch_size`."""

    name = "single_pos"
    reason = "single_pos"

    class Options(Config):
        min_words: int = Field(2, ge=2, description="captions with fewer words are never single_pos")

    def __init__(self, options: Config | dict[str, Any] | None = None, settings: Any = None) -> None:
        super().__init__(options, settings)
        self.batch_size = (settings or FilterConfig()).spacy_batch_size
        self._nlp: Any = None
        self._wn: Any = None
        self._wn_cache: dict[tuple[str, str], bool] = {}
        self._pos_cache: dict[tuple[str, str], str] = {}

    def setup(self) -> None:
        self._nlp = assets.spacy_nlp(TAGGER)
        self._wn = assets.wordnet_index()
        self._stop = assets.stop_words()
        self._pos_rules = pos_rules(self._nlp.get_pipe("attribute_ruler").patterns)
        self._skip = ("attribute_ruler",) if self._pos_rules is not None else ()

    def _pos(self, token: Any) -> str:
        """The attribute ruler's `pos_` of an alphabetic token (module docstring)."""
        if self._pos_rules is None:
            return token.pos_
        key = (token.tag_, token.lower_)
        pos = self._pos_cache.get(key)
        if pos is None:
            pos = ""
            for test, value in self._pos_rules:
                if all(_passes(spec, key[0] if attr == "TAG" else key[1]) for attr, spec in test.items()):
                    pos = value
            if len(self._pos_cache) < 200_000:
                self._pos_cache[key] = pos
        return pos

    def surely_mixed(self, caption: str) -> bool:
        """True when the caption has a function word and a content word (see the module docstring)."""
        words = lower_words(caption)
        return not FUNCTION_WORDS.isdisjoint(words) and not self._stop.issuperset(words)

    def _wordnet_has(self, word: str, pos: str) -> bool:
        key = (word, pos)
        hit = self._wn_cache.get(key)
        if hit is None:
            hit = self._wn.has_sense(word, _WN_POS[pos])
            if len(self._wn_cache) < 200_000:
                self._wn_cache[key] = hit
        return hit

    def _noun_number(self, token: Any) -> str | None:
        """ "singular"/"plural" for a noun token, None for other tokens (see the module docstring)."""
        if token.tag_ in ("NNS", "NNPS"):
            return "plural"
        if token.tag_ not in ("NN", "NNP"):
            return None
        word = token.lower_
        return "plural" if any(base != word for base in self._wn.base_forms(word, "n")) else "singular"

    def _verb_after_subject(self, token: Any, previous: Any) -> bool:
        """A present-tense verb whose form fits its tag, after a noun it agrees with."""
        number = _SUBJECT_NUMBER.get(token.tag_)
        if number is None or previous is None or self._noun_number(previous) != number:
            return False
        base_form = token.lower_ in self._wn.base_forms(token.lower_, "v")
        return base_form == (number == "plural")

    def _possible(self, token: Any, previous: Any) -> set[str]:
        """Parts of speech the token can have here (see the module docstring)."""
        pos = self._pos(token)
        if pos == "PROPN":
            pos = "NOUN"
        word = token.lower_
        if word in self._stop or token.tag_ in _VERB_FORMS or self._verb_after_subject(token, previous):
            return {pos}
        return {pos} | {other for other in _NOUN_ADJ if self._wordnet_has(word, other)}

    def common_pos(self, doc: Any) -> tuple[list[str], int]:
        """(the parts of speech that fit every alphabetic word, sorted; how many words there are)."""
        words = [t for t in doc if t.is_alpha]
        if not words:
            return [], 0
        common = self._possible(words[0], None)
        for previous, token in zip(words, words[1:]):
            common &= self._possible(token, previous)
            if not common:
                break
        return sorted(common), len(words)

    scores = ("pos", "pos_words")

    def score_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`pos` empty without tagging for a surely mixed caption (`pos_words` then counts regex words)."""
        if self._nlp is None:
            self.setup()
        out = [{"pos": [], "pos_words": len(caption_words(row["caption"]))} for row in rows]
        todo = [i for i, row in enumerate(rows) if not self.surely_mixed(row["caption"])]
        docs = self._nlp.pipe((rows[i]["caption"] for i in todo), batch_size=self.batch_size, disable=self._skip)
        for i, doc in zip(todo, docs):
            pos, n = self.common_pos(doc)
            out[i] = {"pos": pos, "pos_words": n}
        return out

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        return self.score_batch([row])[0]

    def decide(self, scores: dict[str, Any]) -> Verdict:
        single = scores["pos_words"] >= self.options.min_words and bool(scores["pos"])
        return reject(self.reason) if single else True
