"""Filters: each answers keep (True) or (False, reason) for one row; see base.Filter.

The text stage (cleaning, text filters, person-name substitution) is `chain.TextChain`;
importing this package registers every text filter in `FILTERS`.
"""

from pipelines.filters.base import FILTERS, Filter, Verdict
from pipelines.filters.chain import TextChain, run_text_chain
from pipelines.filters.clean import caption_repeat_key, normalize_caption
from pipelines.filters.config import TextFilterConfig

__all__ = [
    "FILTERS",
    "Filter",
    "Verdict",
    "TextChain",
    "TextFilterConfig",
    "caption_repeat_key",
    "normalize_caption",
    "run_text_chain",
]
