"""Paths into `../shared/` beside the checkout (real photos and captions for developers and CI).

A user's clone has no `../shared`: a test that needs it calls `shared_path(...)`, which
skips the test with one line naming the missing path. CI has `../shared` and runs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"


def shared_path(*parts: str) -> Path:
    """`../shared/<parts>`; skips the calling test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared beside the checkout; not part of a user's clone)")
    return path
