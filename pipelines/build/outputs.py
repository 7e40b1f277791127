"""The published files of a version: kept.parquet, rejects.parquet, stats.json, manifest.json (last)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines import storage
from pipelines.build.tables import write_parquet

FORMAT = "lipforge.manifest/1"
REJECT_COLUMNS = ["key", "url", "stage", "reason"]
_HISTOGRAMS = {  # name -> bin edges
    "caption_words": [0, 2, 4, 6, 8, 10, 12, 16, 20, 30, 50, 1000],
    "image_short_side": [0, 200, 256, 384, 512, 768, 1024, 2048, 100_000],
    "aspect_ratio": [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 1000.0],
    "lid_score": [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
}


def histogram(name: str, values: list[float]) -> dict[str, list]:
    edges = _HISTOGRAMS[name]
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=edges)
    return {"edges": edges, "counts": [int(c) for c in counts]}


def sample_stats(kept: pa.Table) -> dict[str, Any]:
    captions = kept.column("caption").to_pylist()
    w, h = kept.column("orig_width").to_pylist(), kept.column("orig_height").to_pylist()
    lid = [x for x in kept.column("lang_score").to_pylist() if x is not None and x == x]
    person = kept.column("person_substituted").to_pylist()
    return {
        "caption_words": histogram("caption_words", [len(c.split()) for c in captions]),
        "image_short_side": histogram("image_short_side", [min(a, b) for a, b in zip(w, h)]),
        "aspect_ratio": histogram("aspect_ratio", [max(a, b) / min(a, b) for a, b in zip(w, h)]),
        "lid_score": histogram("lid_score", lid),
        "person_share": (sum(person) / len(person)) if person else 0.0,
    }


def code_version() -> str:
    version = importlib.metadata.version("lipforge")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def write_version(
    out: str,
    *,
    dataset: str,
    version: int,
    config: dict[str, Any],
    sources: list[dict[str, Any]],
    funnel: dict[str, Any],
    kept: pa.Table,
    rejects: pa.Table,
    shards: list[dict[str, Any]],
) -> dict[str, Any]:
    """Write the version's files under `out`; manifest.json goes last (it makes the version visible)."""
    write_parquet(storage.join(out, "kept.parquet"), kept.select(["key", "url", "caption", "shard"]))
    write_parquet(storage.join(out, "rejects.parquet"), rejects.select(REJECT_COLUMNS))
    storage.write_json(storage.join(out, "stats.json"), funnel)
    manifest = {
        "format": FORMAT,
        "dataset": dataset,
        "version": version,
        "parents": [],
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "config": config,
        "sources": sources,
        "funnel": funnel,
        "shards": shards,
        "samples": sum(s["samples"] for s in shards),
        "schema": {"keys": ["jpg", "txt", "json"], "views": {"image": ["jpg"], "text": ["txt"]}},
        "stats": sample_stats(kept),
        "preview": kept.column("key").to_pylist()[:32],
    }
    storage.write_json(storage.join(out, "manifest.json"), manifest)
    return manifest
