"""Stage `shard`: kept samples -> WebDataset tar shards (docs/formats.md).

Members by the version's modality (`MEMBERS`): a pair sample has jpg, txt, json; an
image-only sample jpg, json; a text-only sample txt, json (its json fields: `JSON_FIELDS`,
plus the source columns of `source.keep_columns`, which reach a sample as `keep.NAME` and
its json as `NAME`; the config refuses names of `JSON_FIELDS`).

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
from pipelines.stages.source import KEEP_PREFIX
from pipelines.stages.workdir import WorkDir

MEMBERS: dict[str, tuple[str, ...]] = {
    "pair": ("jpg", "txt", "json"),
    "image": ("jpg", "json"),
    "text": ("txt", "json"),
}
_PAIR_FIELDS = (
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
_TEXT_FIELDS = ("lang", "lang_score", "english_ratio", "person_substituted")
JSON_FIELDS: dict[str, tuple[str, ...]] = {  # the sample json's fields by modality
    "pair": _PAIR_FIELDS,
    "image": tuple(f for f in _PAIR_FIELDS if f not in _TEXT_FIELDS),
    "text": _TEXT_FIELDS,
}


def shard_order(keys: list[str], seed: int) -> list[int]:
    """Indices of `keys` in shard order: sorted by key, then a seeded shuffle."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    random.Random(seed).shuffle(order)
    return order


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


def sample_json(s: dict[str, Any], modality: str = "pair") -> dict[str, Any]:
    """The json member: the modality's `JSON_FIELDS`, then each `keep.NAME` value as `NAME` (NaN as null)."""
    out = {name: s[name] for name in JSON_FIELDS[modality]}
    for name, value in s.items():
        if name.startswith(KEEP_PREFIX):
            out[name[len(KEEP_PREFIX) :]] = value
    for name, value in out.items():
        if isinstance(value, float) and math.isnan(value):
            out[name] = None
    return out


def sample_members(s: dict[str, Any], modality: str = "pair") -> tuple[tuple[str, bytes], ...]:
    """The members of one sample in tar order (`MEMBERS[modality]`): jpg bytes, caption, json."""
    exts = MEMBERS[modality]
    out = [("jpg", s["jpg"])] if "jpg" in exts else []
    if "txt" in exts:
        out.append(("txt", s["caption"].encode("utf-8")))
    out.append(("json", json.dumps(sample_json(s, modality), sort_keys=True).encode("utf-8")))
    return tuple(out)


def write_tar(path: str, samples: list[dict[str, Any]], modality: str = "pair") -> dict[str, Any]:
    """Write one shard (samples in order, each with `key`, `jpg` and/or `caption` + its JSON_FIELDS) to `path`."""
    return write_shard(path, ((s["key"], sample_members(s, modality)) for s in samples))


def _write_shard(path: str, samples: pa.Table, modality: str) -> dict[str, Any]:
    """Ray task body: fetch the shard's images from the raw download shards (unless text-only), write the tar."""
    rows = samples.to_pylist()
    if "jpg" in MEMBERS[modality]:
        images: dict[int, bytes] = {}
        for raw in sorted(set(samples.column("raw").to_pylist())):
            t = read_parquet(raw, columns=["row", "jpg"])
            t = t.filter(pc.is_in(t.column("row"), value_set=samples.column("row")))
            images.update(zip(t.column("row").to_pylist(), t.column("jpg").to_pylist()))
        for s in rows:
            s["jpg"] = images[s["row"]]
    return write_tar(path, rows, modality)


def run_shards(
    kept: pa.Table, cfg: ShardConfig, wd: WorkDir, modality: str = "pair"
) -> tuple[pa.Table, list[dict[str, Any]]]:
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
            pending[i] = write.remote(path, kept.slice(i * n, n), modality)
    with progress(total=len(pending), desc="shard", unit="shard") as bar:
        for i, ref in pending.items():
            info = ray.get(ref)
            wd.mark(f"shard-{i:06d}", {"path": names[i * n], **info})
            bar.update(1)
    shards = [wd.marker(f"shard-{i:06d}") for i in range(math.ceil(kept.num_rows / n))]
    return kept, shards
