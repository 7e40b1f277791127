"""Stage `text`: the text filters over the URL list, before anything is downloaded.

The per-row text filters selected in `filter.checks` (`catalog.reasons` checks 1-6) run
through `pipelines.filters.TextChain` inside a Ray Data actor pool, so fastText/spaCy/WordNet
load once per actor. The whole-input filter `repeated_caption` (check 7, FILIP section 3.1)
then answers on each surviving row's `repeat_count`: how many input rows share its
normalised caption (`caption_repeat_key`), counted over the whole input; every row gets
its count, so `scores.parquet` holds it for rejected rows too. Raw captions are never
written: task outputs hold the cleaned caption with names already substituted (for
rejected rows too: the rejects sample shows them), every check's scores, and a hash of
the normalised caption for the repeat count.

Tasks are chunks of `CHUNK_ROWS` input rows, each with a part file and a completion marker.
A text source's rows (no URL) carry their `key` from `pipelines.stages.source.text_key`;
an image source has no captions and skips the checks (`pass_text`: every row passes).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog.keys import sample_key
from catalog.parquet import read_parquet, write_parquet
from catalog.scores import COLUMNS
from pipelines.filters.chain import TEXT_SCORES, TextChain
from pipelines.filters.clean import caption_repeat_key
from pipelines.filters.config import FilterConfig
from pipelines.stages.funnel import StageCount
from pipelines.stages.tasks import finish_tasks
from pipelines.stages.workdir import WorkDir

CHUNK_ROWS = 50_000
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
    """Ray Data callable class: loads the chain once, cleans and checks one batch of rows."""

    def __init__(self, cfg: dict[str, Any]):
        config = FilterConfig.model_validate(cfg)
        self.max_chars = config.max_caption_chars
        self.chain = TextChain(config)
        self.chain.setup()

    def __call__(self, batch: pa.Table) -> pa.Table:
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
            out["repeat_count"].append(None)  # counted over the whole input by apply_whole_input
        return pa.table(out, schema=SCHEMA)


def run_text(
    source: pa.Table, cfg: FilterConfig, wd: WorkDir, num_actors: int, repeat_counts: Counter | None = None
) -> pa.Table:
    """Run pending chunks, then apply the global repeat count; returns one row per input row.

    `repeat_counts` (norm_hash -> rows): counts over a larger input than `source` (a refresh
    passes the counts over its whole source list); None: counted over `source`.
    """
    import ray

    chunks = [(i, source.slice(start, CHUNK_ROWS)) for i, start in enumerate(range(0, source.num_rows, CHUNK_ROWS))]
    pending = [(i, t) for i, t in chunks if not wd.done(f"text-{i:05d}")]
    if pending:
        ds = ray.data.from_arrow([t for _, t in pending]).map_batches(
            TextActor,
            fn_constructor_kwargs={"cfg": cfg.to_dict()},
            batch_size=512,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, num_actors)),
        )

        def finish(i: int, rows: pa.Table) -> None:
            write_parquet(wd.path("text", f"part-{i:05d}.parquet"), rows.sort_by("row"))
            wd.mark(f"text-{i:05d}", {"rows": rows.num_rows})

        finish_tasks(ds, _chunk_of, {i: t.num_rows for i, t in pending}, finish, "text")
    parts = [read_parquet(wd.path("text", f"part-{i:05d}.parquet")) for i, _ in chunks]
    return apply_whole_input(pa.concat_tables(parts).sort_by("row"), cfg, repeat_counts)


def pass_text(source: pa.Table) -> pa.Table:
    """The text stage of an image source (row, url): every row passes, with no caption and no text fields."""
    n = source.num_rows
    out = {name: pa.nulls(n, SCHEMA.field(name).type) for name in SCHEMA.names}
    out["row"] = source.column("row")
    out["url"] = source.column("url")
    out["key"] = pa.array([sample_key(u) for u in source.column("url").to_pylist()], pa.string())
    return pa.table(out, schema=SCHEMA)


def _chunk_of(batch: pa.Table) -> pa.Array:
    return pc.divide(batch.column("row"), CHUNK_ROWS)


def repeat_counts(captions: list[str], cfg: FilterConfig) -> Counter:
    """norm_hash -> number of rows, over raw `captions` (the whole input of a refresh)."""
    return Counter(caption_repeat_key(c, cfg.max_caption_chars) for c in captions)


def apply_whole_input(table: pa.Table, cfg: FilterConfig, counts: Counter | None = None) -> pa.Table:
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


def count_text(table: pa.Table) -> StageCount:
    return StageCount.of("text", table.num_rows, table.column("reason").to_pylist())
