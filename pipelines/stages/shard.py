"""Stage `shard`: kept samples -> WebDataset tar shards (docs/formats.md).

Members by the version's modality (`MEMBERS`): a pair sample has jpg, txt, json; an
image-only sample jpg, json; a text-only sample txt, json (its json fields: `JSON_FIELDS`,
plus the source columns of `source.keep_columns`, which reach a sample as `keep.NAME` and
its json as `NAME`; the config refuses names of `JSON_FIELDS`).

Order: the input rows fall into windows of `shard.shuffle_rows` consecutive rows; windows
in order, and within a window the kept samples sorted by `shard_rank` (a seeded 64-bit hash
of the key), then cut into shards of `shard.samples_per_shard`. The shuffle needs no global
state and no global sort: each part's kept samples go to the one or few windows its rows
overlap (`window_fragments`), one task sorts each window, the windows' sizes place every
shard's range, and one task per shard reads its slices of one or a few windows and writes the
tar; a shard's marker records its path, size and sha256 once the tar is in place (written
atomically through catalog.storage). Windows, not a hash of the key over the whole input,
because a tar's images come from the raw download shards of its windows only: with a global
hash order every tar would read part of almost every raw shard (~300 GB per tar at 400M
rows, docs/scaling.md). The same kept set, seed and window give the same shards byte for byte
(tar headers carry no time or owner), however the rows were split into parts or tasks, so a
resumed build and an uninterrupted one agree.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import storage
from catalog.parquet import read_parquet, write_parquet
from catalog.shards import write_shard
from pipelines.stages.config import ShardConfig
from pipelines.stages.parts import run_tasks
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


def shard_rank(key: str, seed: int) -> int:
    """A sample's place in shard order: 64 bits of BLAKE2b over the seed and the key."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big")


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


def windows_of(first_row: int, rows: int, shuffle_rows: int) -> range:
    """The shuffle windows that rows [first_row, first_row + rows) overlap."""
    return range(first_row // shuffle_rows, (first_row + max(rows, 1) - 1) // shuffle_rows + 1)


def window_fragments(kept: pa.Table, seed: int, windows: range, shuffle_rows: int) -> list[pa.Table]:
    """`kept` (rows within `windows`) with its `rank` (`shard_rank`), split by window: the windows
    in order, each sorted by (rank, row), are shard order."""
    ranks = [shard_rank(k, seed) for k in kept.column("key").to_pylist()]
    kept = kept.append_column("rank", pa.array(ranks, pa.uint64()))
    which = pc.divide(kept.column("row"), shuffle_rows)  # integer division of int64
    return [kept.filter(pc.equal(which, w)) for w in windows]


def _sort_task(fragments: list[str], out: str) -> dict:
    tables = [read_parquet(f) for f in fragments]
    table = pa.concat_tables(tables, promote_options="permissive").sort_by(
        [("rank", "ascending"), ("row", "ascending")]
    )
    write_parquet(out, table)
    return {"samples": table.num_rows}


def _shard_task(path: str, slices: list[tuple[str, int, int]], modality: str) -> dict:
    samples = pa.concat_tables([read_parquet(uri).slice(start, n) for uri, start, n in slices])
    return _write_shard(path, samples, modality)


def run_shards(
    fragments: list[list[str]], cfg: ShardConfig, wd: WorkDir, modality: str = "pair"
) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """Sort each window (`fragments[window]`: the fragments of the parts overlapping it, from
    `window_fragments`) in a task, cut the windows in order into shards of
    `shard.samples_per_shard` and write each shard in a task.
    Returns ((sorted window file, its first sample's position in shard order) per window, the shards)."""
    buckets = len(fragments)
    sorted_uris = [wd.path("shard", f"window-{b:06d}.parquet") for b in range(buckets)]
    counts = run_tasks(
        wd,
        "shard-sort",
        {f"{b:06d}": (fragments[b], sorted_uris[b]) for b in range(buckets)},
        _sort_task,
        "shard order",
    )
    sizes = [c["samples"] for c in counts.values()]
    starts = [sum(sizes[:b]) for b in range(buckets)]
    total = sum(sizes)
    n = cfg.samples_per_shard
    tasks = {}
    for i in range(math.ceil(total / n)):
        lo, hi = i * n, min(total, (i + 1) * n)
        slices = []
        for b in range(buckets):
            a, z = max(lo, starts[b]), min(hi, starts[b] + sizes[b])
            if a < z:
                slices.append((sorted_uris[b], a - starts[b], z - a))
        path = storage.join(wd.dataset_uri, f"v{wd.version}/shards/{shard_name(i)}")
        tasks[f"{i:06d}"] = (path, slices, modality)
    infos = run_tasks(wd, "shard", tasks, _shard_task, "shard")
    shards = [{"path": f"v{wd.version}/shards/{shard_name(int(i))}", **info} for i, info in infos.items()]
    return list(zip(sorted_uris, starts)), shards


def shard_of(position: int, version: int, samples_per_shard: int) -> str:
    """The shard path (relative to the dataset) of the sample at `position` in shard order."""
    return f"v{version}/shards/{shard_name(position // samples_per_shard)}"
