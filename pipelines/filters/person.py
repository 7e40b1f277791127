"""Person-name substitution (a mapper, not a filter): spaCy PERSON spans -> `<person>`.

Captions name private people ("Maria Lopez holding a red star"); the shards keep
"<person> holding a red star" and `person_substituted=True`. spaCy's NER runs only on
captions that pass a cheap gate, because almost no caption holds a name (filter-facts:
3.8% of real captions pass "a capitalised word after the first one", NER on those only
gives ~41,000 captions/s/core overall). The gate passes a caption when
- a capitalised word follows the first word ("a dog with Tom", "in New York"), or
- the first word is capitalised and is a known first name (`first_names.FIRST_NAMES` +
  `extra_first_names`) or not an English word at all ("Tom holding a cup", "Lopez ...").
To cut NER's false hits on captions (it calls "Corgi", "Mohawk", "Polaris" or "Yorkshire
Terrier" a PERSON), a PERSON span is replaced only if one of its words is a known first name,
or is neither a common English word (a lower-case WordNet lemma or a stop word) nor a WordNet
noun that names something other than a person ("Polaris" is a star, "Yorkshire" a place;
"Gandhi" is a WordNet person, so it is still replaced).

NER also misses names it calls ORG ("Kenji Walker painted ..."): a capitalised known first
name followed by another capitalised word is replaced too. And it sometimes cuts a name
short ("Priya Schmidt painted ..." -> PERSON "Schmidt"): a kept span grows left over
capitalised words right before it that are first names or not common English words.

Privacy: nothing here logs or raises with caption text.
"""

from __future__ import annotations

import re
from typing import Any

from catalog import assets
from pipelines.filters.config import FilterConfig
from pipelines.filters.first_names import FIRST_NAMES

NER = ("ner",)
_WORD = re.compile(r"[^\W\d_]+")


class PersonNameSubstituter:
    """`substitute_batch(captions)` -> [(caption with names replaced, whether any was)]."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.first_names = FIRST_NAMES | {n.strip().lower() for n in self.config.extra_first_names if n.strip()}
        self._nlp: Any = None
        self._common: frozenset[str] = frozenset()
        self._english: frozenset[str] = frozenset()
        self._wn: Any = None

    def setup(self) -> None:
        if self._nlp is None:
            self._nlp = assets.spacy_nlp(NER)
            stop = assets.stop_words()
            self._common = assets.wordnet_common_words() | stop
            self._wn = assets.wordnet()
            self._english = frozenset(self._wn.all_lemma_names()) | stop

    def gate(self, caption: str) -> bool:
        """Cheap test whether the caption may hold a person name (see the module docstring)."""
        words = _WORD.findall(caption)
        if not words:
            return False
        if any(w[0].isupper() for w in words[1:]):
            return True
        first = words[0]
        if not first[0].isupper():
            return False
        low = first.lower()
        return low in self.first_names or low not in self._english

    def _not_a_person_noun(self, word: str) -> bool:
        synsets = self._wn.synsets(word, pos="n")
        return bool(synsets) and all(s.lexname() != "noun.person" for s in synsets)

    def is_name(self, span: Any) -> bool:
        """Keep NER's PERSON span only if it has a first name or a word unknown as a thing."""
        words = [t.lower_ for t in span if t.is_alpha]
        if any(w in self.first_names for w in words):
            return True
        return any(w not in self._common and not self._not_a_person_noun(w) for w in words)

    def first_last_pairs(self, doc: Any) -> list[tuple[int, int]]:
        """(start, end) chars of "Firstname Capitalised" pairs, e.g. "Kenji Walker"."""
        pairs = []
        for a, b in zip(doc, doc[1:]):
            if (
                a.is_alpha
                and b.is_alpha
                and a.text[0].isupper()
                and b.text[0].isupper()
                and a.lower_ in self.first_names
                and a.whitespace_
            ):
                pairs.append((a.idx, b.idx + len(b.text)))
        return pairs

    def _name_start(self, doc: Any, start: int) -> int:
        """Token index where a name ending after token `start` begins (see the module docstring)."""
        while start > 0:
            word = doc[start - 1]
            if not (word.is_alpha and word.text[0].isupper() and word.whitespace_):
                break
            if word.lower_ not in self.first_names and word.lower_ in self._common:
                break
            start -= 1
        return start

    def substitute(self, doc: Any) -> tuple[str, bool]:
        spans = [
            (doc[self._name_start(doc, e.start)].idx, e.end_char)
            for e in doc.ents
            if e.label_ == "PERSON" and self.is_name(e)
        ]
        spans += [p for p in self.first_last_pairs(doc) if not any(s < p[1] and p[0] < e for s, e in spans)]
        text = doc.text
        for start, end in sorted(spans, reverse=True):
            text = text[:start] + self.config.person_placeholder + text[end:]
        return text, bool(spans)

    def substitute_batch(self, captions: list[str]) -> list[tuple[str, bool]]:
        self.setup()
        out: list[tuple[str, bool]] = [(c, False) for c in captions]
        gated = [i for i, c in enumerate(captions) if self.gate(c)]
        docs = self._nlp.pipe((captions[i] for i in gated), batch_size=self.config.spacy_batch_size)
        for i, doc in zip(gated, docs):
            out[i] = self.substitute(doc)
        return out
