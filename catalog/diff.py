"""Compare two versions: counts, sample keys added and removed, schema and funnel deltas."""

from __future__ import annotations

from typing import Any

from catalog.store import Catalog

EXAMPLES = 10


def _funnel_deltas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    reasons = sorted(set(a["rejected"]) | set(b["rejected"]))
    stages_a = {s["stage"]: s for s in a.get("stages", [])}
    stages_b = {s["stage"]: s for s in b.get("stages", [])}
    names = list(stages_a) + [s for s in stages_b if s not in stages_a]
    return {
        "in": b["in"] - a["in"],
        "kept": b["kept"] - a["kept"],
        "rejected": {r: b["rejected"].get(r, 0) - a["rejected"].get(r, 0) for r in reasons},
        "stages": [
            {
                "stage": name,
                "in": stages_b.get(name, {}).get("in", 0) - stages_a.get(name, {}).get("in", 0),
                "kept": stages_b.get(name, {}).get("kept", 0) - stages_a.get(name, {}).get("kept", 0),
            }
            for name in names
        ],
    }


def diff_versions(catalog: Catalog, ref_a: str, ref_b: str) -> dict[str, Any]:
    """What changed from `ref_a` to `ref_b` (B minus A)."""
    (da, va), (db, vb) = catalog.resolve(ref_a), catalog.resolve(ref_b)
    ma, mb = catalog.index.manifest(da, va), catalog.index.manifest(db, vb)
    keys_a, keys_b = set(catalog.keys(da, va)), set(catalog.keys(db, vb))
    added, removed = sorted(keys_b - keys_a), sorted(keys_a - keys_b)
    shards_a, shards_b = {s["path"] for s in ma["shards"]}, {s["path"] for s in mb["shards"]}
    schema_a, schema_b = set(ma["schema"].get("keys", [])), set(mb["schema"].get("keys", []))
    return {
        "a": f"{da}@{va}",
        "b": f"{db}@{vb}",
        "samples": {"a": ma["samples"], "b": mb["samples"], "delta": mb["samples"] - ma["samples"]},
        "keys": {
            "added": len(added),
            "removed": len(removed),
            "kept": len(keys_a & keys_b),
            "added_examples": added[:EXAMPLES],
            "removed_examples": removed[:EXAMPLES],
        },
        "shards": {
            "added": sorted(shards_b - shards_a),
            "removed": sorted(shards_a - shards_b),
            "shared": len(shards_a & shards_b),
        },
        "schema": {"added": sorted(schema_b - schema_a), "removed": sorted(schema_a - schema_b)},
        "funnel": _funnel_deltas(ma["funnel"], mb["funnel"]),
    }
