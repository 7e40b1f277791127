"""Pluggable translators for back-translation: `apertium` (default) and `marian`."""

from augment.text.translate import apertium, marian  # noqa: F401  (register the backends)
from augment.text.translate.base import TRANSLATORS, Translator

__all__ = ["TRANSLATORS", "Translator"]
