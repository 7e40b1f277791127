"""English-only filters: `not_english` (FILIP §3.1) and `low_english_ratio` (DeCLIP appendix A).

English-word ratio: the share of a caption's words that are English words — an English
stop word (spaCy's list: WordNet has no function words) or a WordNet lemma, trying
`morphy` (inflections: "waterskies" -> "waterski") only on misses. Capitalised words that
are not English words and look like names ("Lopez" after the first word, or "Pedro
Garcia" at the start) are not counted either way: a name is not a non-English word.

`not_english` decision. fastText's probability is not an English score for short text
(shared/notes/filter-facts.md: "a red circle" -> en 0.20; real captions whose top label is
pl/es/nl still give en 0.12-0.43, while foreign captions give en < 0.04), so fastText and
the English-word ratio r (here with frequent Romance/Germanic function words that are also
WordNet entries — "de", "la", "el", "un", "der", "die", "les" ... — counted as NOT English)
decide together:
  1. top label `en` with probability >= `lid_confident_en`: English;
  2. top label `en`, less sure ("dos astres grocs." -> en 0.33): English when
     r >= `lid_weak_en_ratio`;
  3. another top label: English only when r >= `lid_english_ratio`, the top label's
     probability is below `lid_foreign_prob` (`lid_short_foreign_prob` for captions of at
     most `lid_short_words` words: short text is where fastText is unsure), and either
     fastText still gives English >= `lid_min_en_prob`, or it is unsure of every language
     (top probability < `lid_unsure_prob`: "a yellow heart" -> nl 0.09, fr 0.08, de 0.07),
     or every counted word is an English word (r >= `lid_all_english_ratio`: "A purple heart
     above a black circle" -> de 0.29, en < 0.08; a word-level fact outweighs a low
     probability, while a confident foreign label still rejects).
fastText splits on whitespace only, so punctuation glued to a word makes it an unseen
token ("a black star." -> pt 0.41, "a black star ." -> en 0.31): it sees the caption with
punctuation split off (`lid_text`), the form real captions such as Flickr's already have.
The row gets `lang` ("en" when kept, else the top label) and `lang_score` (fastText's
English probability when kept, else the top label's probability).
"""

from __future__ import annotations

import re
from typing import Any

from catalog import assets
from pipelines.filters.base import FILTERS, Filter, Verdict, reject
from pipelines.filters.config import TextFilterConfig

WORD = re.compile(r"[^\W\d_]+")
_LID_TOKEN = re.compile(r"\w+|[^\w\s]+")
# Function words of es/ca/pt/fr/it/de/nl that WordNet also lists (abbreviations, letters,
# notes: "de" Delaware, "la" Louisiana, "el" elevated railway, "die" the verb ...).
FOREIGN_FUNCTION_WORDS = frozenset(
    "un una uno unos unas el la las los lo le les del al de da di du des dos tres y e o en con por para "
    "sobre sota que qui il ils et est es ist und der die das den dem des ein eine einem einer mit von zu "
    "im am het een op na ao os às per col nel".split()
)


def _titlecase(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or word[1:].islower())


class EnglishWords:
    """English-word lookups shared by the language filters (loaded once per worker)."""

    def __init__(self) -> None:
        self._vocab: frozenset[str] | None = None
        self._morphy_cache: dict[str, bool] = {}
        self._wn: Any = None

    def setup(self) -> None:
        if self._vocab is None:
            self._wn = assets.wordnet()
            lemmas = (n for n in self._wn.all_lemma_names() if "_" not in n and "-" not in n)
            self._vocab = frozenset(lemmas) | assets.stop_words()

    @property
    def ready(self) -> bool:
        return self._vocab is not None

    def is_english(self, word: str) -> bool:
        """`word` (lower case) is a stop word or a WordNet lemma, directly or through morphy."""
        assert self._vocab is not None, "EnglishWords.setup() not called"
        if word in self._vocab:
            return True
        hit = self._morphy_cache.get(word)
        if hit is None:
            hit = self._wn.morphy(word) is not None
            if len(self._morphy_cache) < 200_000:
                self._morphy_cache[word] = hit
        return hit

    def counted_words(self, caption: str) -> list[tuple[str, bool]]:
        """(lower-case word, is English) for each word that counts (names skipped)."""
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


def lid_text(caption: str) -> str:
    """The caption as fastText sees it: words and punctuation runs separated by single spaces."""
    return " ".join(_LID_TOKEN.findall(caption))


@FILTERS.register("not_english")
class NotEnglish(Filter):
    """fastText lid.176 top label + English probability + English-word ratio (module docstring)."""

    name = "not_english"
    reason = "not_english"

    def __init__(self, config: TextFilterConfig | None = None, words: EnglishWords | None = None) -> None:
        self.config = config or TextFilterConfig()
        self.words = words or EnglishWords()
        self._model: Any = None

    def setup(self) -> None:
        self._model = assets.lid_model()
        self.words.setup()

    def scores(self, caption: str) -> tuple[str, float, float]:
        """(top label, its probability, English probability) from fastText."""
        labels, probs = self._model.predict(lid_text(caption), k=-1)
        top = labels[0][9:]  # strip "__label__"
        p_en = 0.0
        for label, p in zip(labels, probs):
            if label == "__label__en":
                p_en = float(p)
                break
        return top, float(probs[0]), p_en

    def is_english(self, caption: str) -> tuple[bool, str, float]:
        """(decision, lang, lang_score) as written into the row."""
        top, p_top, p_en = self.scores(caption)
        c = self.config
        if top == "en" and p_en >= c.lid_confident_en:
            return True, "en", p_en
        ratio = self.words.ratio(caption, FOREIGN_FUNCTION_WORDS)
        if top == "en":
            return (True, "en", p_en) if ratio >= c.lid_weak_en_ratio else (False, top, p_top)
        n_words = len(WORD.findall(caption))
        foreign_max = c.lid_short_foreign_prob if n_words <= c.lid_short_words else c.lid_foreign_prob
        if (
            p_top < foreign_max
            and ratio >= c.lid_english_ratio
            and (p_en >= c.lid_min_en_prob or p_top < c.lid_unsure_prob or ratio >= c.lid_all_english_ratio)
        ):
            return True, "en", p_en
        return False, top, p_top

    def keep(self, row: dict[str, Any]) -> Verdict:
        if self._model is None:
            self.setup()
        english, lang, score = self.is_english(row["caption"].replace("\n", " "))
        row["lang"] = lang
        row["lang_score"] = round(score, 4)
        return True if english else reject(self.reason)


@FILTERS.register("low_english_ratio")
class LowEnglishRatio(Filter):
    """DeCLIP appendix A: keep captions with at least `english_ratio_min` English words."""

    name = "low_english_ratio"
    reason = "low_english_ratio"

    def __init__(self, config: TextFilterConfig | None = None, words: EnglishWords | None = None) -> None:
        self.config = config or TextFilterConfig()
        self.words = words or EnglishWords()

    def setup(self) -> None:
        self.words.setup()

    def keep(self, row: dict[str, Any]) -> Verdict:
        if not self.words.ready:
            self.setup()
        ratio = self.words.ratio(row["caption"])
        row["english_ratio"] = round(ratio, 4)
        return True if ratio >= self.config.english_ratio_min else reject(self.reason)
