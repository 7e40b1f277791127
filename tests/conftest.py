"""Fixtures shared across test modules."""

import pytest

from pipelines import assets
from pipelines.filters import TextChain


@pytest.fixture(scope="session")
def chain() -> TextChain:
    """The real text filter chain (fastText, spaCy, WordNet), loaded once per test session."""
    assets.prepare()
    c = TextChain()
    c.setup()
    return c
