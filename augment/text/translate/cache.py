"""Persistent back-translation cache: SQLite keyed by (backend identity, pivot, caption hash).

A data refresh that carries captions forward never translates them twice. SQLite in WAL
mode lets several Ray workers on one machine share the file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from catalog import assets


def caption_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def default_cache_dir() -> Path:
    return assets.cache_dir() / "augment"


class TranslationCache:
    """get_many / put_many of round-trip outputs; one connection per worker process."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "backtranslation.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS bt (backend TEXT, pivot TEXT, hash TEXT, output TEXT, PRIMARY KEY (backend, pivot, hash))"
        )

    def get_many(self, backend: str, pivot: str, texts: Sequence[str]) -> dict[str, str]:
        """caption -> cached output, for the captions that are cached."""
        hashes = {caption_hash(t): t for t in texts}
        found: dict[str, str] = {}
        items = list(hashes)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            rows = self.db.execute(
                f"SELECT hash, output FROM bt WHERE backend=? AND pivot=? AND hash IN ({','.join('?' * len(chunk))})",
                (backend, pivot, *chunk),
            )
            for h, output in rows:
                found[hashes[h]] = output
        return found

    def put_many(self, backend: str, pivot: str, pairs: Sequence[tuple[str, str]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO bt VALUES (?, ?, ?, ?)",
                [(backend, pivot, caption_hash(t), o) for t, o in pairs],
            )

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM bt").fetchone()[0])

    def close(self) -> None:
        self.db.close()
