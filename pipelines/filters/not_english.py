"""`not_english` (FILIP §3.1): fastText lid.176 and the English-word ratio decide together.

fastText's probability is not an English score for short text
(shared/notes/filter-facts.md: "a red circle" -> en 0.20; real captions whose top label is
pl/es/nl still give en 0.12-0.43, while foreign captions give en < 0.04), so fastText and
the English-word ratio r (`pipelines.filters.english`, here with frequent Romance/Germanic
function words that are also WordNet entries — "de", "la", "el", "un", "der", "die",
"les" ... — counted as NOT English) decide together (option names in brackets):
  1. top label `en` with probability >= `confident_en`: English;
  2. top label `en`, less sure ("dos astres grocs." -> en 0.33): English when
     r >= `weak_en_ratio`;
  3. another top label: English only when r >= `english_ratio`, the top label's
     probability is below `foreign_prob` (`short_foreign_prob` for captions of at
     most `short_words` words: short text is where fastText is unsure), and either
     fastText still gives English >= `min_en_prob`, or it is unsure of every language
     (top probability < `unsure_prob`: "a yellow heart" -> nl 0.09, fr 0.08, de 0.07),
     or every counted word is an English word (r >= `all_english_ratio`: "A purple heart
     above a black circle" -> de 0.29, en < 0.08; a word-level fact outweighs a low
     probability, while a confident foreign label still rejects).
fastText splits on whitespace only, so punctuation glued to a word makes it an unseen
token ("a black star." -> pt 0.41, "a black star ." -> en 0.31): it sees the caption with
punctuation split off (`lid_text`), the form real captions such as Flickr's already have.
Scores (`catalog.scores`): `lang` and `lang_prob` (the top label and its probability),
`lang_en_prob`, `lid_english_ratio` (r, of the caption after name substitution) and
`n_words`; `decide` applies the options above to them.

Speed: fastText is asked for its top label only (k=1); only when that label is not `en` is
it asked for every label (k=-1), to find English's probability. fastText computes each
label's probability the same way whatever k is (pinned by a test), so the scores are those
of asking for every label on every caption, at ~5x less cost (building 176 labels per call
was most of fastText's time). `fasttext-predict`'s batch call (a list of lines) returns no
probabilities, so captions go one by one.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from catalog import assets
from catalog.config import Config
from pipelines.filters.base import Filter, Verdict, register, reject
from pipelines.filters.english import EnglishWords, caption_words, english_words

_LID_TOKEN = re.compile(r"\w+|[^\w\s]+")
# Byte -> its class in `_LID_TOKEN` for ASCII: "w" a word character, " " whitespace, "." the rest.
_ASCII_CLASSES = bytes(
    ord("w") if re.fullmatch(r"\w", chr(b)) else ord(" ") if chr(b).isspace() else ord(".") for b in range(256)
)
_EN = "__label__en"
# Function words of es/ca/pt/fr/it/de/nl that WordNet also lists (abbreviations, letters,
# notes: "de" Delaware, "la" Louisiana, "el" elevated railway, "die" the verb ...).
FOREIGN_FUNCTION_WORDS = frozenset(
    "un una uno unos unas el la las los lo le les del al de da di du des dos tres y e o en con por para "
    "sobre sota que qui il ils et est es ist und der die das den dem des ein eine einem einer mit von zu "
    "im am het een op na ao os às per col nel".split()
)


def lid_text(caption: str) -> str:
    """The caption as fastText sees it: words and punctuation runs separated by single spaces.

    An ASCII caption where no word character touches a punctuation character (Flickr's
    "A dog runs ." form) needs only its whitespace collapsed: each whitespace-separated
    token is then one `_LID_TOKEN` match (`_ASCII_CLASSES` maps each byte to its class).
    """
    if caption.isascii():
        classes = caption.encode("ascii").translate(_ASCII_CLASSES)
        if b"w." not in classes and b".w" not in classes:
            return " ".join(caption.split())
    return " ".join(_LID_TOKEN.findall(caption))


def _prob(default: float, description: str) -> Any:
    return Field(default, ge=0.0, le=1.0, description=description)


@register
class NotEnglish(Filter):
    """fastText lid.176 top label + English probability + English-word ratio (module docstring)."""

    name = "not_english"
    reason = "not_english"

    class Options(Config):
        confident_en: float = _prob(0.5, "top label en at least this sure: English")
        weak_en_ratio: float = _prob(0.5, "top label en but less sure: least English-word ratio to count as English")
        unsure_prob: float = _prob(0.2, "top probability below this: fastText is unsure of every language")
        min_en_prob: float = _prob(
            0.08,
            "when the top label is not en: least English probability to still count as English "
            "(real English captions measured >= 0.12, foreign ones <= 0.04)",
        )
        foreign_prob: float = _prob(0.7, "a top non-English label at or above this probability always rejects")
        short_words: int = Field(6, ge=1, description="captions with at most this many words are 'short'")
        short_foreign_prob: float = _prob(0.9, "foreign_prob for short captions (fastText is unsure on short text)")
        english_ratio: float = _prob(
            0.8,
            "when the top label is not en: least English-word ratio (foreign function words "
            "counted as not English) to still count as English",
        )
        all_english_ratio: float = _prob(
            1.0,
            "when the top label is not en (and below the foreign cut-off): an English-word ratio at "
            "least this high counts as English without support from fastText's English probability",
        )

    def __init__(
        self, options: Config | dict[str, Any] | None = None, settings: Any = None, words: EnglishWords | None = None
    ) -> None:
        super().__init__(options, settings)
        self.words = words or english_words()
        self._model: Any = None

    def setup(self) -> None:
        self._model = assets.lid_model()
        self.words.setup()

    scores = ("lang", "lang_prob", "lang_en_prob", "lid_english_ratio", "n_words")

    def lid(self, caption: str) -> tuple[str, float, float]:
        """(top label, its probability, English probability) from fastText (module docstring)."""
        text = lid_text(caption)
        labels, probs = self._model.predict(text, k=1)
        top, p_top = labels[0], float(probs[0])
        if top == _EN:
            return "en", p_top, p_top
        p_en = 0.0
        for label, p in zip(*self._model.predict(text, k=-1)):
            if label == _EN:
                p_en = float(p)
                break
        return top[9:], p_top, p_en  # strip "__label__"

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        if self._model is None:
            self.setup()
        caption = row["caption"].replace("\n", " ")
        top, p_top, p_en = self.lid(caption)
        return {
            "lang": top,
            "lang_prob": p_top,
            "lang_en_prob": p_en,
            "lid_english_ratio": self.words.ratio(row.get("scrubbed", caption), FOREIGN_FUNCTION_WORDS),
            "n_words": len(caption_words(caption)),
        }

    def decide(self, scores: dict[str, Any]) -> Verdict:
        return True if self.is_english(scores) else reject(self.reason)

    def is_english(self, scores: dict[str, Any]) -> bool:
        """Rules 1-3 of the module docstring on one row's scores."""
        o = self.options
        top, p_top, p_en, ratio = (scores[k] for k in ("lang", "lang_prob", "lang_en_prob", "lid_english_ratio"))
        if top == "en":
            return p_en >= o.confident_en or ratio >= o.weak_en_ratio
        foreign_max = o.short_foreign_prob if scores["n_words"] <= o.short_words else o.foreign_prob
        return (
            p_top < foreign_max
            and ratio >= o.english_ratio
            and (p_en >= o.min_en_prob or p_top < o.unsure_prob or ratio >= o.all_english_ratio)
        )
