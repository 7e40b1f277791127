"""Re-hash a version's shards against its manifest (read fresh from storage, not the index)."""

from __future__ import annotations

from typing import Any

from catalog import storage
from catalog.shards import sha256_of
from catalog.store import Catalog
from catalog.versions import version_uri


def verify_version(catalog: Catalog, ref: str) -> dict[str, Any]:
    """`{"version", "ok", "shards": [{"path", "status", ...}]}`; status is ok, missing or mismatch."""
    dataset, version = catalog.resolve(ref)
    manifest = storage.read_json(storage.join(version_uri(catalog.root, dataset, version), "manifest.json"))
    results = []
    for shard in manifest["shards"]:
        uri = catalog.shard_uri(dataset, shard["path"])
        row: dict[str, Any] = {
            "path": shard["path"],
            "uri": uri,
            "expected_sha256": shard["sha256"],
            "expected_bytes": shard["bytes"],
        }
        if not storage.exists(uri):
            row["status"] = "missing"
        else:
            sha, size = sha256_of(uri)
            row.update(
                sha256=sha, bytes=size, status="ok" if (sha, size) == (shard["sha256"], shard["bytes"]) else "mismatch"
            )
        results.append(row)
    return {"version": f"{dataset}@{version}", "ok": all(r["status"] == "ok" for r in results), "shards": results}
