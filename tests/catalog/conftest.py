"""Fixtures shared by the catalog tests."""

import pytest

from catalog.synthetic import make_version


@pytest.fixture()
def root(tmp_path):
    """A local root with two small versions (demo@1, demo-eval@1) for model-run records."""
    r = str(tmp_path / "root")
    make_version(r, "demo", 4, seed=1, views=False)
    make_version(r, "demo-eval", 3, seed=2, views=False)
    return r
