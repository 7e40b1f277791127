"""Stable sample keys: the same URL gets the same `__key__` in every run and version."""

from __future__ import annotations

import hashlib


def sample_key(url: str) -> str:
    """16 hex chars of SHA-1 over the URL (stable across runs, machines and versions)."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]
