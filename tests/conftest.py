"""Fixtures shared across test packages."""

import pytest

from pipelines.filters import TextChain


@pytest.fixture(scope="session")
def chain() -> TextChain:
    """The real text filter chain (fastText, spaCy, WordNet), loaded once per test session."""
    c = TextChain()
    c.setup()
    return c


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e/ (real Ray, HTTP servers, Chromium, subprocess clusters) is `slow`."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.slow)
