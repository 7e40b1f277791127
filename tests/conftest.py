"""Fixtures shared across test packages."""

import pytest

from pipelines.filters import TextChain


@pytest.fixture(scope="session")
def chain() -> TextChain:
    """The real text filter chain (fastText, spaCy, WordNet), loaded once per test session."""
    c = TextChain()
    c.setup()
    return c
