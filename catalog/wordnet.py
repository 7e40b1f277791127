"""WordNet's lemma index and morphology, read straight from the prepared copy's files.

The build's text checks ask WordNet three questions: is this a lemma (`lemmas`), what is its
base form (`morphy`, "geese" -> "goose"), and has it a sense as a noun or an adjective
(`has_sense`). NLTK's `WordNetCorpusReader` answers them too, but importing NLTK (which
pulls in scipy) and building its lemma/offset map costs about 7 s per text actor, most of a
small build's text stage. This reader loads only the four `index.*` files (lemma and parts
of speech) and the four `*.exc` exception lists: about 0.3 s.

Answers equal NLTK's 3.9 reader's (`morphy`, `_morphy`, `bool(synsets(word, pos))`) for every
word: the rules below are its `MORPHOLOGICAL_SUBSTITUTIONS` and `_morphy`, and
`tests/catalog/test_wordnet.py` compares the two on every index lemma, every exception form
and every wordfreq English word in each part of speech. Synsets, glosses and relations (EDA's
synonyms, `pipelines.doctor`) still come from NLTK (`catalog.assets.wordnet`).
"""

from __future__ import annotations

from pathlib import Path

NOUN, VERB, ADJ, ADV = "n", "v", "a", "r"
POS_LIST = (NOUN, VERB, ADJ, ADV)  # the order `morphy` tries them when no part of speech is given
_FILES = {NOUN: "noun", VERB: "verb", ADJ: "adj", ADV: "adv"}

# Suffix rules per part of speech (WordNet's morph(7WN); NLTK's table, same order).
SUBSTITUTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    NOUN: (
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    VERB: (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    ADJ: (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    ADV: (),
}


class WordNetIndex:
    """The lemma index and exception lists of the WordNet copy in `root`."""

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        self._pos: dict[str, set[str]] = {}  # lemma -> its parts of speech
        self._exceptions: dict[str, dict[str, list[str]]] = {}
        for pos, name in _FILES.items():
            path = root / f"index.{name}"
            with open(path, encoding="utf-8") as fp:
                for number, line in enumerate(fp, 1):
                    if line.startswith(" "):  # licence header
                        continue
                    fields = line.split(" ", 2)
                    if len(fields) < 3 or fields[1] != pos:
                        raise ValueError(f"{path}, line {number}: expected 'lemma {pos} ...', got {line[:60]!r}")
                    self._pos.setdefault(fields[0], set()).add(pos)
            with open(root / f"{name}.exc", encoding="utf-8") as fp:
                self._exceptions[pos] = {terms[0]: terms[1:] for terms in map(str.split, fp) if terms}

    def lemmas(self) -> frozenset[str]:
        """Every lemma of the index, as written there (lower case; multi-word ones joined by "_")."""
        return frozenset(self._pos)

    def base_forms(self, form: str, pos: str) -> list[str]:
        """The lemmas of part of speech `pos` that `form` may be an inflection of, `form` itself first
        when it is one: the exception list's bases if `form` is listed, else one suffix rule applied."""
        exceptions = self._exceptions[pos]
        if form in exceptions:
            candidates = exceptions[form]
        else:
            candidates = [form[: -len(old)] + new for old, new in SUBSTITUTIONS[pos] if form.endswith(old)]
        found: list[str] = []
        for candidate in (form, *candidates):
            if pos in self._pos.get(candidate, ()) and candidate not in found:
                found.append(candidate)
        return found

    def morphy(self, form: str, pos: str | None = None) -> str | None:
        """The first base form of `form` in `pos`, or in the first part of speech that has one; None if none has."""
        for p in (pos,) if pos else POS_LIST:
            found = self.base_forms(form, p)
            if found:
                return found[0]
        return None

    def has_sense(self, word: str, pos: str) -> bool:
        """`word` (any case) or one of its base forms is a lemma of part of speech `pos`."""
        return bool(self.base_forms(word.lower(), pos))
