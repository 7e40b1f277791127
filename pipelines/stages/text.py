"""Stage `text`: the text filters over the URL list, before anything is downloaded.

The per-row text filters selected in `filter.checks` (`catalog.reasons` checks 1-6) run
through `pipelines.filters.TextChain` in a pool of Ray actors, so fastText/spaCy/WordNet
load once per actor. The whole-input filter `repeated_caption` (check 7, FILIP section 3.1)
then answers on each surviving row's `repeat_count`: how many input rows share its
normalised caption (`caption_repeat_key`), counted over the whole input; every row gets
its count, so `scores.parquet` holds it for rejected rows too. Raw captions are never
written: task outputs hold the cleaned caption with names already substituted (for
rejected rows too: the rejects sample shows them), every check's scores, and a hash of
the normalised caption for the repeat count.

Tasks are the source's part files (`pipelines.stages.source.split_source`), each checked by
one actor call that reads its raw captions itself and writes a text part with a completion marker.
The repeat count is a distributed group-by on `norm_hash` (`apply_repeats`: map to hash
buckets, count per bucket, apply per part), so no caption hash passes through the driver.
A text source's rows (no URL) carry their `key` from `pipelines.stages.source.text_key`;
an image source has no captions and skips the checks (`pass_text`: every row passes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import storage
from catalog.console import progress
from catalog.keys import sample_key
from catalog.parquet import num_rows, read_parquet, write_parquet
from catalog.scores import COLUMNS
from pipelines.filters.chain import TEXT_SCORES, TextChain
from pipelines.filters.clean import caption_repeat_key
from pipelines.filters.config import FilterConfig
from pipelines.stages.parts import bucket_of, groups_of, read_bucket, run_actors, run_tasks, write_bucketed
from pipelines.stages.source import kept_fields
from pipelines.stages.workdir import WorkDir

BATCH = 512  # captions per chain call
ROWS_PER_BUCKET = 1_000_000  # caption hashes per repeat-count reduce task
MAP_ROWS = 500_000  # rows per repeat-count map and apply task: text parts are grouped up to about this many
FIELDS = {name: COLUMNS[name][0] for name in TEXT_SCORES}  # the chain's per-row scores
SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("key", pa.string()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("reason", pa.string()),
        ("norm_hash", pa.string()),
        *FIELDS.items(),
        ("repeat_count", pa.int64()),
    ]
)


class TextActor:
    """A Ray actor: loads the chain once; each call checks one source part file
    (a raw caption is read from the part inside the actor and never passes through the object
    store or the driver) and writes its text part."""

    def __init__(self, cfg: dict[str, Any]):
        config = FilterConfig.model_validate(cfg)
        self.max_chars = config.max_caption_chars
        self.chain = TextChain(config)
        self.chain.setup()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        table = read_parquet(item["src"])
        parts = [self.check(batch) for batch in table.to_batches(max_chunksize=BATCH)] or [SCHEMA.empty_table()]
        out = pa.concat_tables(parts)
        for name in kept_fields(table):  # source.keep_columns, for the kept samples' json
            out = out.append_column(name, table.column(name))
        write_parquet(item["out"], out)
        return {"i": item["i"], "rows": out.num_rows}

    def check(self, batch: pa.RecordBatch) -> pa.Table:
        rows = batch.to_pylist()
        results = self.chain.run(rows)
        out = {name: [] for name in SCHEMA.names}
        for row, res in zip(rows, results):
            out["row"].append(row["row"])
            out["key"].append(row["key"] if "key" in row else sample_key(row["url"]))  # a text source has keys
            out["url"].append(row.get("url"))
            out["reason"].append(res.get("reason"))
            out["caption"].append(res["caption"] or None)
            out["norm_hash"].append(caption_repeat_key(row["caption"], self.max_chars))
            for name in FIELDS:
                out[name].append(res.get(name))
            out["repeat_count"].append(None)  # counted over the whole input by apply_repeats
        return pa.table(out, schema=SCHEMA)


def run_text(
    parts: list[dict[str, Any]],
    cfg: FilterConfig,
    wd: WorkDir,
    num_actors: int,
    repeat_hashes: list[str] | None = None,
) -> list[str]:
    """Check every source part (`pipelines.stages.source.split_source`), then apply the global
    repeat count; returns the decided text part files, one per source part, each one row per input row.

    `repeat_hashes`: files of `norm_hash` of more rows counted but not decided here (a
    refresh's already-decided rows of its source list).
    """
    outs = [wd.path("text", f"part-{i:05d}.parquet") for i in range(len(parts))]
    pending = [i for i in range(len(parts)) if not wd.done(f"text-{i:05d}")]
    with progress(total=sum(parts[i]["rows"] for i in pending), desc="text", unit="row") as bar:

        def done(result: dict[str, Any]) -> None:
            wd.mark(f"text-{result['i']:05d}", {"rows": result["rows"]})
            bar.update(result["rows"])

        items = [{"i": i, "src": parts[i]["uri"], "out": outs[i]} for i in pending]
        run_actors(TextActor, (cfg.to_dict(),), items, num_actors, done)
    return apply_repeats(wd, outs, cfg, sum(p["rows"] for p in parts), repeat_hashes)


def pass_text(parts: list[dict[str, Any]], wd: WorkDir) -> list[str]:
    """The text stage of an image source (row, url): every row passes, with no caption and no text fields."""
    outs = []
    for i, part in enumerate(parts):
        out = wd.path("text", f"passed-{i:05d}.parquet")
        if not wd.done(f"text-{i:05d}"):
            source = read_parquet(part["uri"])
            n = source.num_rows
            cols = {name: pa.nulls(n, SCHEMA.field(name).type) for name in SCHEMA.names}
            cols["row"] = source.column("row")
            cols["url"] = source.column("url")
            cols["key"] = pa.array([sample_key(u) for u in source.column("url").to_pylist()], pa.string())
            table = pa.table(cols, schema=SCHEMA)
            for name in kept_fields(source):
                table = table.append_column(name, source.column(name))
            write_parquet(out, table)
            wd.mark(f"text-{i:05d}", {"rows": n})
        outs.append(out)
    return outs


def _hash_map_task(group: list[str], out: str, buckets: int) -> dict:
    t = pa.concat_tables([read_parquet(u, columns=["norm_hash"]) for u in group])
    write_bucketed(out, t, [bucket_of(h, buckets) for h in t.column("norm_hash").to_pylist()])
    return {"rows": t.num_rows}


def _hash_reduce_task(maps: list[str], bucket: int, decided: int, out: str) -> dict:
    """Count each hash of this bucket over every map file (one per group of parts); write, in one
    file bucketed by group, each of the first `decided` groups (the others' rows are counted
    only) the counts of its hashes."""
    tables = [read_bucket([uri], bucket) for uri in maps]
    counted = pa.concat_tables(tables).group_by("norm_hash").aggregate([([], "count_all")])
    counted = counted.rename_columns(["norm_hash", "repeat_count"])
    mine = [counted.filter(pc.is_in(counted.column("norm_hash"), value_set=t.column("norm_hash"))) for t in tables]
    groups = [g for g, t in enumerate(mine[:decided]) for _ in range(t.num_rows)]
    write_bucketed(out, pa.concat_tables(mine[:decided]), groups)
    return {"hashes": counted.num_rows}


def _apply_task(group: list[str], g: int, counts: list[str], outs: list[str], cfg: dict[str, Any]) -> dict:
    """Decide each text part of group `g` with its hashes' counts (read once for the group)."""
    t = read_bucket(counts, g)
    lookup = dict(zip(t.column("norm_hash").to_pylist(), t.column("repeat_count").to_pylist()))
    filters, rows = FilterConfig.model_validate(cfg), 0
    for part, out in zip(group, outs, strict=True):
        table = apply_whole_input(read_parquet(part), filters, lookup)
        write_parquet(out, table)
        rows += table.num_rows
    return {"rows": rows}


def apply_repeats(
    wd: WorkDir, parts: list[str], cfg: FilterConfig, rows: int, extra: list[str] | None = None
) -> list[str]:
    """The repeated-caption count as a distributed group-by on `norm_hash` (`pipelines.stages.parts`):
    map each group of text parts (about MAP_ROWS rows; and each `extra` file of hashes: rows
    counted but not decided, a refresh's old rows) to one file in hash-bucket order, count
    per bucket, then give every row of each part its `repeat_count` and run the whole-input
    filters, one task per group. Files per round: groups, then buckets (n / MAP_ROWS and
    n / ROWS_PER_BUCKET). Returns the decided part files."""
    extra = extra or []
    buckets = max(1, -(-(rows + sum(num_rows(u) for u in extra)) // ROWS_PER_BUCKET))
    ranges = groups_of(len(parts), rows, MAP_ROWS)
    groups = [[parts[i] for i in r] for r in ranges] + [[u] for u in extra]
    decided = len(ranges)
    base = wd.path("repeat")
    maps = [storage.join(base, "map", f"g{g:05d}.parquet") for g in range(len(groups))]
    counts = [storage.join(base, "counts", f"b{b:05d}.parquet") for b in range(buckets)]
    run_tasks(
        wd,
        "repeat-map",
        {f"{g:05d}": (group, maps[g], buckets) for g, group in enumerate(groups)},
        _hash_map_task,
        "repeat count 1/3",
    )
    run_tasks(
        wd,
        "repeat-reduce",
        {f"{b:05d}": (maps, b, decided, counts[b]) for b in range(buckets)},
        _hash_reduce_task,
        "repeat count 2/3",
    )
    final = [storage.join(base, "decided", f"part-{p:05d}.parquet") for p in range(len(parts))]
    run_tasks(
        wd,
        "repeat-apply",
        {f"{g:05d}": (groups[g], g, counts, [final[i] for i in ranges[g]], cfg.to_dict()) for g in range(decided)},
        _apply_task,
        "repeat count 3/3",
    )
    return final


def apply_whole_input(table: pa.Table, cfg: FilterConfig, counts: Mapping[str, int] | None = None) -> pa.Table:
    """Give every row its `repeat_count`, then run the whole-input text filters (`repeated_caption`)
    on the rows the per-row filters kept.

    `counts`: norm_hash -> rows over the whole input (default: over `table`'s rows).
    """
    filters = [f for f in cfg.filters("text") if f.whole_input]
    hashes = table.column("norm_hash").to_pylist()
    counts = Counter(hashes) if counts is None else counts
    repeats = [counts[h] for h in hashes]
    reasons = table.column("reason").to_pylist()
    for f in filters:
        f.setup()
        for i, repeat in enumerate(repeats):
            if reasons[i] is None:
                verdict = f.decide({"repeat_count": repeat})
                if verdict is not True:
                    reasons[i] = verdict[1]
    table = table.set_column(table.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string()))
    return table.set_column(table.schema.get_field_index("repeat_count"), "repeat_count", pa.array(repeats, pa.int64()))
