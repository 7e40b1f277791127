"""Per-shard offset indexes: where each sample's members start inside a shard.

One small SQLite file per shard, named by the shard's sha256 from the manifest and kept
beside the catalog index (`{index_dir}/offsets/`). Content addressing means a shard carried
forward by reference into later versions (refresh) is indexed once. The gallery uses it to
page a version of any size by reading byte ranges of shards, never whole shards.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing

from catalog.shards import Member, scan_shard

_SCHEMA = """
CREATE TABLE members (sample INTEGER, key TEXT, ext TEXT, header INTEGER, offset INTEGER, size INTEGER);
CREATE INDEX members_sample ON members (sample);
CREATE INDEX members_key ON members (key);
"""


def offsets_path(index_dir: str, sha256: str) -> str:
    return os.path.join(index_dir, "offsets", sha256[:2], f"{sha256}.sqlite")


def write_offsets(path: str, members: list[Member]) -> None:
    """Write the offset index of one shard atomically (temp file + rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".sqlite", dir=os.path.dirname(path))
    os.close(fd)
    try:
        with closing(sqlite3.connect(tmp)) as db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)",
                [(m.sample, m.key, m.ext, m.header, m.offset, m.size) for m in members],
            )
            db.commit()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ShardOffsets:
    """Lookups in one shard's offset index (built from the shard on first use)."""

    def __init__(self, index_dir: str, shard_uri: str, sha256: str) -> None:
        self.shard_uri = shard_uri
        self.path = offsets_path(index_dir, sha256)
        if not os.path.exists(self.path):
            write_offsets(self.path, scan_shard(shard_uri))

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            return db.execute(sql, params).fetchall()

    def sample(self, position: int) -> list[Member]:
        """The members of the sample at `position` in the shard, in tar order."""
        rows = self._query("SELECT * FROM members WHERE sample = ? ORDER BY header", (position,))
        return [Member(*row) for row in rows]

    def samples(self, start: int, stop: int) -> dict[int, list[Member]]:
        """Members of samples start..stop-1, by position."""
        out: dict[int, list[Member]] = {}
        for row in self._query("SELECT * FROM members WHERE sample >= ? AND sample < ? ORDER BY header", (start, stop)):
            out.setdefault(row[0], []).append(Member(*row))
        return out

    def position_of(self, key: str) -> int | None:
        rows = self._query("SELECT sample FROM members WHERE key = ? LIMIT 1", (key,))
        return rows[0][0] if rows else None

    def keys(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT key FROM members ORDER BY sample")]
