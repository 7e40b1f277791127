"""The catalog index: one SQLite file that makes listing and paging fast.

It is a cache of the manifests (the source of truth) and never the other way round:
`refresh` compares each `{dataset}/v{N}/manifest.json`'s fingerprint (local mtime and
size, or the S3 ETag) with what the index holds and re-reads only what changed;
deleting the file and refreshing rebuilds it exactly. For a local root it lives in
`{root}/.catalog/` (or the cache dir when the root is read-only); for an s3:// root in
`<cache>/catalog/<hash of root>/` (the project cache, `catalog.assets.cache_dir()`). The per-shard
offset indexes (catalog.offsets) live beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from contextlib import closing
from typing import Any

from catalog import assets, storage
from catalog.manifest import ManifestError, check_manifest
from catalog.versions import VersionNotFound, parse_ref

INDEX_FORMAT = "lipforge.catalog-index/1"
_MANIFEST = re.compile(r"^(?P<dataset>[^/.][^/]*)/v(?P<version>\d+)/manifest\.json$")
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE versions (
  dataset TEXT, version INTEGER, fingerprint TEXT, created TEXT, samples INTEGER,
  n_in INTEGER, kept INTEGER, n_shards INTEGER, bytes INTEGER, parents TEXT,
  code_version TEXT, manifest TEXT, PRIMARY KEY (dataset, version));
CREATE TABLE shards (
  dataset TEXT, version INTEGER, idx INTEGER, path TEXT, samples INTEGER, bytes INTEGER,
  sha256 TEXT, first INTEGER, PRIMARY KEY (dataset, version, idx));
CREATE INDEX shards_first ON shards (dataset, version, first);
CREATE TABLE problems (dataset TEXT, version INTEGER, fingerprint TEXT, error TEXT, PRIMARY KEY (dataset, version));
"""


def default_index_dir(root: str) -> str:
    """Where the index of `root` lives (see module docstring)."""
    if not storage.is_remote(root):
        local = os.path.join(os.path.abspath(root), ".catalog")
        probe = local if os.path.isdir(local) else os.path.abspath(root)
        if os.access(probe, os.W_OK):
            return local
    cache = str(assets.cache_dir())
    tag = hashlib.sha1(os.path.abspath(root).encode() if not storage.is_remote(root) else root.encode()).hexdigest()[
        :16
    ]
    return os.path.join(cache, "catalog", tag)


class CatalogIndex:
    """The SQLite index of one catalog root."""

    def __init__(self, root: str, index_dir: str | None = None) -> None:
        self.root = root.rstrip("/") if storage.is_remote(root) else os.path.abspath(root)
        self.dir = index_dir or default_index_dir(self.root)
        self.path = os.path.join(self.dir, "index.sqlite")
        self._scanned_at = 0.0
        self._lock = threading.Lock()

    # -- building -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        os.makedirs(self.dir, exist_ok=True)
        fresh = not os.path.exists(self.path)
        db = sqlite3.connect(self.path, timeout=30)
        if fresh:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('format', ?)", (INDEX_FORMAT,))
            db.commit()
        return db

    def scan_manifests(self) -> dict[tuple[str, int], str]:
        """{(dataset, version): fingerprint} of every complete version under the root."""
        fs, base = storage.filesystem(self.root)
        found = {}
        for path, info in fs.glob(f"{base}/*/v*/manifest.json", detail=True).items():
            m = _MANIFEST.match(path[len(base) :].lstrip("/"))
            if not m:
                continue
            tag = info.get("ETag") or info.get("mtime") or info.get("LastModified")
            found[(m.group("dataset"), int(m.group("version")))] = f"{tag}:{info.get('size')}"
        return found

    def refresh(self, max_age: float = 0.0) -> dict[str, int]:
        """Bring the index in line with the manifests; skip when scanned < max_age s ago.

        Returns counts of versions added, updated and removed.
        """
        with self._lock:
            if max_age and time.monotonic() - self._scanned_at < max_age and os.path.exists(self.path):
                return {"added": 0, "updated": 0, "removed": 0}
            current = self.scan_manifests()
            with closing(self._connect()) as db:
                known = dict(
                    ((d, v), f)
                    for d, v, f in db.execute(
                        "SELECT dataset, version, fingerprint FROM versions UNION ALL SELECT dataset, version, fingerprint FROM problems"
                    )
                )
                added = [k for k in current if k not in known]
                updated = [k for k in current if k in known and known[k] != current[k]]
                removed = [k for k in known if k not in current]
                db.execute("BEGIN IMMEDIATE")
                for key in removed + updated:
                    for table in ("versions", "shards", "problems"):
                        db.execute(f"DELETE FROM {table} WHERE dataset = ? AND version = ?", key)
                for key in sorted(added + updated):
                    self._insert(db, key, current[key])
                db.commit()
            self._scanned_at = time.monotonic()
            return {"added": len(added), "updated": len(updated), "removed": len(removed)}

    def _insert(self, db: sqlite3.Connection, key: tuple[str, int], fingerprint: str) -> None:
        dataset, version = key
        uri = storage.join(self.root, dataset, f"v{version}", "manifest.json")
        try:
            try:
                manifest = json.loads(storage.read_bytes(uri).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ManifestError(f"{uri}: not valid JSON ({exc})") from None
            check_manifest(manifest, uri, dataset, version)
        except ManifestError as exc:
            db.execute("INSERT INTO problems VALUES (?, ?, ?, ?)", (dataset, version, fingerprint, str(exc)))
            return
        funnel = manifest["funnel"]
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                dataset,
                version,
                fingerprint,
                manifest["created"],
                manifest["samples"],
                funnel["in"],
                funnel["kept"],
                len(manifest["shards"]),
                sum(s["bytes"] for s in manifest["shards"]),
                json.dumps(manifest["parents"]),
                manifest["code_version"],
                json.dumps(manifest, sort_keys=True),
            ),
        )
        first = 0
        rows = []
        for i, shard in enumerate(manifest["shards"]):
            rows.append((dataset, version, i, shard["path"], shard["samples"], shard["bytes"], shard["sha256"], first))
            first += shard["samples"]
        db.executemany("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def rebuild(self) -> dict[str, int]:
        """Drop the index file and build it again from the manifests."""
        with self._lock:
            for suffix in ("", "-journal", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.unlink(self.path + suffix)
            self._scanned_at = 0.0
        return self.refresh()

    # -- queries --------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, params).fetchall()

    def datasets(self) -> list[str]:
        return [r["dataset"] for r in self._rows("SELECT DISTINCT dataset FROM versions ORDER BY dataset")]

    def versions(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Summary rows (no manifest body), by dataset then version; `modality` is the
        manifest's ("pair" when it has none, as `catalog.manifest.modality_of` reads it)."""
        sql = (
            "SELECT dataset, version, created, samples, n_in, kept, n_shards, bytes, parents, code_version,"
            " COALESCE(json_extract(manifest, '$.modality'), 'pair') AS modality FROM versions"
        )
        rows = self._rows(
            sql + (" WHERE dataset = ?" if dataset else "") + " ORDER BY dataset, version",
            (dataset,) if dataset else (),
        )
        return [{**dict(r), "parents": json.loads(r["parents"])} for r in rows]

    def problems(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows("SELECT dataset, version, error FROM problems ORDER BY dataset, version")]

    def resolve(self, ref: str) -> tuple[str, int]:
        """'demo@3' / 'demo@latest' / 'demo' -> (dataset, version); raises naming what exists."""
        name, ver = parse_ref(ref)
        have = [
            r["version"] for r in self._rows("SELECT version FROM versions WHERE dataset = ? ORDER BY version", (name,))
        ]
        bad = self._rows("SELECT version, error FROM problems WHERE dataset = ?", (name,))
        if ver != "latest" and int(ver) not in have:
            for row in bad:
                if row["version"] == int(ver):
                    raise VersionNotFound(row["error"])
        if not have:
            raise VersionNotFound(
                f"dataset {name!r}: no complete version under {self.root}"
                + (f" (known: {', '.join(self.datasets())})" if self.datasets() else "")
            )
        if ver == "latest":
            return name, have[-1]
        if int(ver) not in have:
            raise VersionNotFound(f"dataset {name!r}: no complete version {ver} under {self.root} (have {have})")
        return name, int(ver)

    def manifest(self, dataset: str, version: int) -> dict[str, Any]:
        rows = self._rows("SELECT manifest FROM versions WHERE dataset = ? AND version = ?", (dataset, version))
        if not rows:
            raise VersionNotFound(f"{dataset}@{version}: not in the catalog under {self.root}")
        return json.loads(rows[0]["manifest"])

    def manifest_samples(self, dataset: str, version: int) -> int:
        rows = self._rows("SELECT samples FROM versions WHERE dataset = ? AND version = ?", (dataset, version))
        if not rows:
            raise VersionNotFound(f"{dataset}@{version}: not in the catalog under {self.root}")
        return rows[0]["samples"]

    def shard_for(self, dataset: str, version: int, position: int) -> dict[str, Any] | None:
        """The shard row holding sample `position` (0-based over the whole version)."""
        rows = self._rows(
            "SELECT * FROM shards WHERE dataset = ? AND version = ? AND first <= ? AND samples > 0 ORDER BY first DESC LIMIT 1",
            (dataset, version, position),
        )
        if not rows or position >= rows[0]["first"] + rows[0]["samples"]:
            return None
        return dict(rows[0])

    def shards(self, dataset: str, version: int) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._rows(
                "SELECT * FROM shards WHERE dataset = ? AND version = ? ORDER BY idx", (dataset, version)
            )
        ]

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table (fingerprints included), for comparing two indexes."""
        out = {}
        with closing(self._connect()) as db:
            for table in ("meta", "versions", "shards", "problems"):
                out[table] = sorted(db.execute(f"SELECT * FROM {table}").fetchall())
        return out
