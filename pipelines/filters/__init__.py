"""Filters: each answers keep (True) or (False, reason) for one row; see `base.Filter`.

One module per filter, registered in `FILTERS` by name; importing this package imports
every module in it, so every built-in filter is registered. Non-filter helpers live here
too: `clean` (caption normalisation, the repeat key), `english` (English-word lookups),
`person` (person-name substitution). The build config's `filter:` section
is `config.FilterConfig`; the text stage's per-row part is `chain.TextChain`.
"""

import importlib
import pkgutil

from pipelines.filters.base import FILTERS, Filter, Verdict
from pipelines.filters.chain import TextChain
from pipelines.filters.clean import caption_repeat_key, normalize_caption
from pipelines.filters.config import FilterConfig

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "FILTERS",
    "Filter",
    "FilterConfig",
    "TextChain",
    "Verdict",
    "caption_repeat_key",
    "normalize_caption",
]
