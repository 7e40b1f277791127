"""Stage `shard`: kept samples -> WebDataset tar shards (members jpg, txt, json; docs/formats.md).

Order: kept samples sorted by key, then shuffled by `random.Random(shard.seed)`, then cut
into shards of `shard.samples_per_shard`. The same kept set and seed give the same shards
byte for byte (tar headers carry no time or owner), so a resumed build and an
uninterrupted one agree. One Ray task per shard; a shard's marker records its path,
size and sha256 once the tar is in place (written atomically through catalog.storage).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray

from catalog import storage
from catalog.console import progress
from catalog.parquet import read_parquet
from catalog.shards import write_shard
from pipelines.stages.config import ShardConfig
from pipelines.stages.workdir import WorkDir

JSON_FIELDS = (
    "url",
    "orig_width",
    "orig_height",
    "width",
    "height",
    "lang",
    "lang_score",
    "english_ratio",
    "phash",
    "person_substituted",
)


def shard_order(keys: list[str], seed: int) -> list[int]:
    """Indices of `keys` in shard order: sorted by key, then a seeded shuffle."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    random.Random(seed).shuffle(order)
    return order


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


def sample_json(s: dict[str, Any]) -> dict[str, Any]:
    out = {name: s[name] for name in JSON_FIELDS}
    for name in ("lang_score", "english_ratio"):
        if out[name] is not None and math.isnan(out[name]):
            out[name] = None
    return out


def write_tar(path: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Write one shard (samples in order, each with `key`, `jpg`, `caption` + JSON_FIELDS) to `path`."""
    return write_shard(
        path,
        (
            (
                s["key"],
                (
                    ("jpg", s["jpg"]),
                    ("txt", s["caption"].encode("utf-8")),
                    ("json", json.dumps(sample_json(s), sort_keys=True).encode("utf-8")),
                ),
            )
            for s in samples
        ),
    )


def _write_shard(path: str, samples: pa.Table) -> dict[str, Any]:
    """Ray task body: fetch the shard's images from the raw download shards, write the tar."""
    images: dict[int, bytes] = {}
    for raw in sorted(set(samples.column("raw").to_pylist())):
        t = read_parquet(raw, columns=["row", "jpg"])
        t = t.filter(pc.is_in(t.column("row"), value_set=samples.column("row")))
        images.update(zip(t.column("row").to_pylist(), t.column("jpg").to_pylist()))
    rows = samples.to_pylist()
    for s in rows:
        s["jpg"] = images[s["row"]]
    return write_tar(path, rows)


def run_shards(kept: pa.Table, cfg: ShardConfig, wd: WorkDir) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Write pending shards; return `kept` in shard order with a `shard` column, and the shard list."""

    kept = kept.take(shard_order(kept.column("key").to_pylist(), cfg.seed))
    n = cfg.samples_per_shard
    names = [f"v{wd.version}/shards/{shard_name(i // n)}" for i in range(kept.num_rows)]
    kept = kept.append_column("shard", pa.array(names, pa.string()))
    write = ray.remote(_write_shard)
    pending = {}
    for i in range(math.ceil(kept.num_rows / n)):
        if not wd.done(f"shard-{i:06d}"):
            path = storage.join(wd.dataset_uri, names[i * n])
            pending[i] = write.remote(path, kept.slice(i * n, n))
    with progress(total=len(pending), desc="shard", unit="shard") as bar:
        for i, ref in pending.items():
            info = ray.get(ref)
            wd.mark(f"shard-{i:06d}", {"path": names[i * n], **info})
            bar.update(1)
    shards = [wd.marker(f"shard-{i:06d}") for i in range(math.ceil(kept.num_rows / n))]
    return kept, shards
