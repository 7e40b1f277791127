"""A refresh's new rows: the source list's rows whose key no earlier version decided, found as
Ray tasks over files (a distributed anti-join), with no per-row state in the driver.

A row of the re-read source list is *decided* when its key (`catalog.keys.sample_key(url)`;
a text source's `pipelines.stages.source.text_key`) is in the parent version's kept.parquet
or rejects.parquet; every other row is *new* and goes through the build's stages. Rounds
(`pipelines.stages.parts`: map to hash buckets of the key, resolve per bucket, apply per group):
1. map: each group of source parts (about MAP_ROWS rows) writes its (row, key) and each
   row-group slice of the parent's kept / rejects tables its keys, one file in bucket order
   (`pipelines.stages.parts.write_bucketed`);
2. reduce, one task per bucket: the source rows whose key is not among the bucket's decided
   keys, in one file bucketed by source group, and their count per group (the task's marker);
3. apply, one task per source group: from the per-group counts the driver gives each group
   the number of its first new row, so the new rows are numbered 0..n-1 in source order
   without a global pass; the task writes each part's new rows (`source/new/`: raw captions,
   deleted with the other source parts once the text stage has checked them), each new row's
   place in the source list (`refresh/rows/`: for the scores), and the normalised-caption
   hashes of the group's decided rows (the repeat count covers the whole source list).
Files per round: groups + slices, then buckets, as in the build's repeat count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import storage
from catalog.keys import sample_key
from catalog.parquet import num_rows, read_parquet, read_row_groups, read_schema, row_group_slices, write_parquet
from pipelines.filters.clean import caption_repeat_key
from pipelines.stages.parts import bucket_of, groups_of, read_bucket, run_tasks, write_bucketed
from pipelines.stages.workdir import WorkDir

ROWS_PER_BUCKET = 2_000_000  # keys (source rows + decided rows) per reduce task
MAP_ROWS = 500_000  # rows per map and apply task: source parts and table slices are grouped up to about this many


@dataclass
class NewRows:
    """The new rows as part files like `split_source`'s (rows 0..n-1), with what a refresh needs
    about them; file names and counts only."""

    parts: list[dict[str, Any]]  # uri, rows, first_row: the stages' input
    source_rows: list[str]  # per part: each new row's `row` in the source list
    earlier: list[str]  # files of norm_hash of the decided rows (empty for an image source)
    total: int  # source rows
    new: int


def _keys(table: pa.Table) -> pa.Array:
    if "key" in table.column_names:  # a text source's rows carry their key
        return table.column("key")
    return pa.array([sample_key(u) for u in table.column("url").to_pylist()], pa.string())


def _split(table: pa.Table, keys: pa.Array, out: str, buckets: int) -> None:
    write_bucketed(out, table, [bucket_of(k, buckets) for k in keys.to_pylist()])


def _source_map_task(parts: list[str], out: str, buckets: int) -> dict:
    named = ["row", "key"] if "key" in read_schema(parts[0]).names else ["row", "url"]  # what names a row's key
    t = pa.concat_tables([read_parquet(u, columns=named) for u in parts])
    keys = _keys(t)
    _split(pa.table({"row": t.column("row"), "key": keys}), keys, out, buckets)
    return {"rows": t.num_rows}


def _decided_map_task(uri: str, row_groups: list[int], out: str, buckets: int) -> dict:
    keys = read_row_groups(uri, row_groups, ["key"]).column("key").combine_chunks()
    _split(pa.table({"key": keys}), keys, out, buckets)
    return {"rows": len(keys)}


def _reduce_task(source: list[str], decided: list[str], bucket: int, out: str) -> dict:
    """The source rows of one bucket whose key is not decided, in one file bucketed by source group."""
    known = pa.array([], pa.string())
    if decided:
        known = read_bucket(decided, bucket).column("key").combine_chunks()
    new = [read_bucket([uri], bucket) for uri in source]
    new = [t.filter(pc.invert(pc.is_in(t.column("key"), value_set=known))).select(["row"]) for t in new]
    write_bucketed(out, pa.concat_tables(new), [g for g, t in enumerate(new) for _ in range(t.num_rows)])
    return {"new": [t.num_rows for t in new]}


def _apply_task(
    parts: list[dict],
    new: list[str],
    group: int,
    first: int,
    outs: list[str],
    rows_out: list[str],
    hashes: str | None,
    chars: int,
) -> dict:
    """Write each part's new rows (source group `group`'s rows of the reduce files `new`),
    numbered from `first` in source order; the decided rows' caption hashes."""
    new_rows = read_bucket(new, group).column("row").combine_chunks()
    written, earlier = [], []
    for part, out, rows_uri in zip(parts, outs, rows_out, strict=True):
        t = read_parquet(part["uri"])
        is_new = pc.is_in(t.column("row"), value_set=new_rows)
        fresh = t.filter(is_new)
        if hashes is not None:
            earlier += [caption_repeat_key(c, chars) for c in t.filter(pc.invert(is_new)).column("caption").to_pylist()]
        if fresh.num_rows:
            write_parquet(rows_uri, pa.table({"source_row": fresh.column("row")}))
            numbered = pa.array(range(first, first + fresh.num_rows), pa.int64())
            write_parquet(out, fresh.set_column(0, "row", numbered))
        written.append(fresh.num_rows)
        first += fresh.num_rows
    if hashes is not None:
        write_parquet(hashes, pa.table({"norm_hash": pa.array(earlier, pa.string())}))
    return {"rows": written}


def new_rows(
    parts: list[dict[str, Any]], kept: str, rejects: str, wd: WorkDir, captions: bool, max_caption_chars: int
) -> NewRows:
    """The new rows of the source `parts` (`split_source`) against the parent's `kept` and `rejects`
    parquet files; `captions`: write the decided rows' caption hashes (a source with captions)."""
    total = sum(p["rows"] for p in parts)
    slices = [(uri, s) for uri in (kept, rejects) for s in row_group_slices(uri, MAP_ROWS)]
    groups = groups_of(len(parts), total, MAP_ROWS)
    buckets = max(1, -(-(total + num_rows(kept) + num_rows(rejects)) // ROWS_PER_BUCKET))
    base = wd.path("refresh")

    def mapped(name: str) -> str:
        return storage.join(base, "map", f"{name}.parquet")

    maps: dict[str, tuple] = {}
    for g, r in enumerate(groups):
        maps[f"s{g:05d}"] = ([parts[i]["uri"] for i in r], mapped(f"s{g:05d}"), buckets)
    run_tasks(wd, "refresh-map", maps, _source_map_task, "new rows 1/3")
    decided_maps = {f"d{d:05d}": (uri, s, mapped(f"d{d:05d}"), buckets) for d, (uri, s) in enumerate(slices)}
    run_tasks(wd, "refresh-map", decided_maps, _decided_map_task, "new rows 1/3")
    found = [storage.join(base, "new", f"b{b:05d}.parquet") for b in range(buckets)]
    reduced = run_tasks(
        wd,
        "refresh-reduce",
        {
            f"{b:05d}": (
                [mapped(f"s{g:05d}") for g in range(len(groups))],
                [mapped(d) for d in decided_maps],
                b,
                found[b],
            )
            for b in range(buckets)
        },
        _reduce_task,
        "new rows 2/3",
    )
    per_group = [sum(r["new"][g] for r in reduced.values()) for g in range(len(groups))]
    firsts = [sum(per_group[:g]) for g in range(len(groups))]
    outs = [wd.path("source", "new", f"part-{i:05d}.parquet") for i in range(len(parts))]
    rows_out = [wd.path("refresh", "rows", f"part-{i:05d}.parquet") for i in range(len(parts))]
    hashes = [wd.path("refresh", "earlier", f"g{g:05d}.parquet") if captions else None for g in range(len(groups))]
    applied = run_tasks(
        wd,
        "refresh-apply",
        {
            f"{g:05d}": (
                [parts[i] for i in r],
                found,
                g,
                firsts[g],
                [outs[i] for i in r],
                [rows_out[i] for i in r],
                hashes[g],
                max_caption_chars,
            )
            for g, r in enumerate(groups)
            if per_group[g] or captions
        },
        _apply_task,
        "new rows 3/3",
    )
    counts = [0] * len(parts)
    for g, r in enumerate(groups):
        if f"{g:05d}" in applied:
            for i, n in zip(r, applied[f"{g:05d}"]["rows"]):
                counts[i] = n
    new_parts, source_rows, first = [], [], 0
    for i, n in enumerate(counts):
        if n:
            new_parts.append({"uri": outs[i], "rows": n, "first_row": first})
            source_rows.append(rows_out[i])
            first += n
    earlier = [h for h in hashes if h is not None]
    return NewRows(new_parts, source_rows, earlier, total, first)
