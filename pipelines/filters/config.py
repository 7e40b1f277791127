"""Typed config of the text stage: cleaning, the text filters and person-name substitution.

Used as the `filter` section of the build config (`BuildConfig.filter`). Every key has a
default, so an empty section runs the whole chain. Thresholds come from FILIP §3.1 (data
cleaning), DeCLIP appendix A (English-word ratio >= 0.8, single part of speech) and the
measurements in shared/notes/filter-facts.md.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from catalog.config import Config
from catalog.reasons import REASONS

# The text reasons are the first six of the check order; each has one filter of that name.
TextFilterName = Literal[REASONS[:6]]  # type: ignore[valid-type]
TEXT_FILTER_NAMES: tuple[str, ...] = get_args(TextFilterName)

# A deliberately small default list (explicit sexual / pornographic terms); replace it in
# the YAML (`filter.sensitive_words`) with the list your data policy requires.
DEFAULT_SENSITIVE_WORDS: tuple[str, ...] = (
    "porn",
    "porno",
    "pornography",
    "pornographic",
    "xxx",
    "nsfw",
    "hentai",
    "nude",
    "nudes",
    "nudity",
    "erotic",
    "sex",
    "blowjob",
    "masturbation",
    "masturbating",
)


class TextFilterConfig(Config):
    """`filter:` section. All filters on by default, in `catalog.reasons` order."""

    filters: list[TextFilterName] = Field(
        default_factory=lambda: list(TEXT_FILTER_NAMES),
        description="text filters to run (always applied in catalog.reasons check order)",
    )
    max_caption_chars: int = Field(
        1000, ge=16, description="captions longer than this are cut at the last word boundary before it"
    )
    # not_english (fastText lid.176): the decision is described in pipelines/filters/language.py.
    lid_confident_en: float = Field(0.5, ge=0.0, le=1.0, description="top label en at least this sure: English")
    lid_weak_en_ratio: float = Field(
        0.5, ge=0.0, le=1.0, description="top label en but less sure: least English-word ratio to count as English"
    )
    lid_unsure_prob: float = Field(
        0.2, ge=0.0, le=1.0, description="top probability below this: fastText is unsure of every language"
    )
    lid_min_en_prob: float = Field(
        0.08,
        ge=0.0,
        le=1.0,
        description="when the top label is not en: least English probability to still count as English "
        "(real English captions measured >= 0.12, foreign ones <= 0.04)",
    )
    lid_foreign_prob: float = Field(
        0.7, ge=0.0, le=1.0, description="a top non-English label at or above this probability always rejects"
    )
    lid_short_words: int = Field(6, ge=1, description="captions with at most this many words are 'short'")
    lid_short_foreign_prob: float = Field(
        0.9, ge=0.0, le=1.0, description="lid_foreign_prob for short captions (fastText is unsure on short text)"
    )
    lid_english_ratio: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="when the top label is not en: least English-word ratio (foreign function words "
        "counted as not English) to still count as English",
    )
    lid_all_english_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="when the top label is not en (and below the foreign cut-off): an English-word ratio at "
        "least this high counts as English without support from fastText's English probability",
    )
    english_ratio_min: float = Field(0.8, ge=0.0, le=1.0, description="low_english_ratio threshold (DeCLIP: 0.8)")
    sensitive_words: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_WORDS))
    single_pos_min_words: int = Field(2, ge=2, description="captions with fewer words are never single_pos")
    person_substitution: bool = True
    extra_first_names: list[str] = Field(
        default_factory=list, description="first names added to the built-in list used by the person-name gate"
    )
    person_placeholder: str = "<person>"
    spacy_batch_size: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _unique_filters(self) -> "TextFilterConfig":
        if len(set(self.filters)) != len(self.filters):
            raise ValueError(f"filters: listed twice: {sorted({f for f in self.filters if self.filters.count(f) > 1})}")
        return self
