"""Fixtures shared by the pipelines tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray of 2 CPUs for the tests of one module (tasks and actors over part files)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
