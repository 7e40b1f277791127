"""The published files of a version: kept.parquet, rejects.parquet, scores.parquet,
rejects_sample.parquet (catalog.scores), then stats.json + manifest.json.

The parquet tables are the build's own; stats.json and manifest.json (last: it makes the
version visible) are written by the one manifest writer, `catalog.publish.publish_version`,
with the schema/stats/preview computed from the kept table by `catalog.publish.contents_of`
(the same code that reads them from shards), so no shard is read back.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import storage
from catalog.parquet import read_parquet
from catalog.publish import contents_of, publish_version
from catalog.scores import REJECTS_SAMPLE_FILE, SAMPLE_SCHEMA, SCHEMA, SCORES_FILE
from catalog.versions import version_uri
from pipelines.stages.shard import MEMBERS

# Every modality writes these columns; what a modality lacks is null (a text row's url and
# size, an image row's caption and lang_score).
KEPT_COLUMNS = ["key", "url", "caption", "shard", "orig_width", "orig_height", "lang_score"]
# Image identity of each kept sample, written when the kept table has it (a pair or image
# build's does): a refresh de-duplicates new images against the carried ones with it.
IMAGE_COLUMNS = ["phash", "sha256"]
REJECT_COLUMNS = ["key", "url", "stage", "reason"]


Rows = pa.Table | str | list[str] | Callable[[], Iterable[pa.Table]]  # a table, parquet file(s), or batches


def batches(rows: Rows) -> Iterator[pa.Table]:
    """The tables of `rows`, one at a time (a list of parquet files is read one file at a time)."""
    if isinstance(rows, pa.Table):
        yield rows
    elif isinstance(rows, str):
        yield read_parquet(rows)
    elif isinstance(rows, list):
        for uri in rows:
            yield read_parquet(uri)
    else:
        yield from rows()


def write_rows(uri: str, rows: Rows, columns: list[str], schema: pa.Schema | None = None) -> None:
    """Write `rows`' `columns` (cast to `schema` when given) to the parquet file `uri` one table at a
    time, through a local temporary file (moved into place, or uploaded to s3://)."""
    fd, tmp = tempfile.mkstemp(prefix=".rows-", suffix=".parquet")
    os.close(fd)
    try:
        writer = None
        for t in batches(rows):
            t = t.select(columns)
            t = t.cast(schema) if schema is not None else t
            if writer is None:
                writer = pq.ParquetWriter(tmp, t.schema)
            elif t.schema != writer.schema:
                t = t.cast(writer.schema)
            writer.write_table(t)
        if writer is None:  # no rows at all: an empty file with the columns
            raise ValueError(f"{uri}: nothing to write")
        writer.close()
        storage.upload_file(tmp, uri)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_tables(out: str, kept: Rows, rejects: Rows, scores: Rows | None = None, sample: Rows | None = None) -> None:
    """kept.parquet (KEPT_COLUMNS + IMAGE_COLUMNS), rejects.parquet (never a caption) under `out`;
    scores.parquet and rejects_sample.parquet (scrubbed captions only) when given."""
    first = next(batches(kept))
    columns = KEPT_COLUMNS + [c for c in IMAGE_COLUMNS if c in first.column_names]
    write_rows(storage.join(out, "kept.parquet"), kept, columns)
    write_rows(storage.join(out, "rejects.parquet"), rejects, REJECT_COLUMNS)
    if scores is not None:
        write_rows(storage.join(out, SCORES_FILE), scores, SCHEMA.names, SCHEMA)
    if sample is not None:
        write_rows(storage.join(out, REJECTS_SAMPLE_FILE), sample, SAMPLE_SCHEMA.names, SAMPLE_SCHEMA)


def kept_contents(
    kept: Rows, modality: str = "pair"
) -> Iterator[tuple[str, str | None, dict[str, Any], tuple[str, ...]]]:
    """(key, caption or None, sample json fields the stats use, members) per kept row, in shard order."""
    columns = ("key", "caption", "orig_width", "orig_height", "lang_score")
    for table in batches(kept):
        for key, caption, w, h, lid in zip(*(table.column(c).to_pylist() for c in columns)):
            meta = {"orig_width": w, "orig_height": h, "lang_score": None if lid is None or math.isnan(lid) else lid}
            yield key, caption, meta, MEMBERS[modality]


def write_version(
    out: str,
    *,
    dataset: str,
    version: int,
    config: dict[str, Any],
    sources: list[dict[str, Any]],
    funnel: dict[str, Any],
    kept: Rows,
    rejects: Rows,
    shards: list[dict[str, Any]],
    scores: Rows | None = None,
    sample: Rows | None = None,
    parents: list[str] | None = None,
    modality: str = "pair",
) -> dict[str, Any]:
    """Write the version's tables under `out` = `{root}/{dataset}/v{version}`, then publish its manifest."""
    root = storage.join(out, "..", "..")
    if version_uri(root, dataset, version) != storage.join(out):
        raise ValueError(f"{out}: a version folder must be {{root}}/{dataset}/v{version}")
    write_tables(out, kept, rejects, scores, sample)
    return publish_version(
        root,
        dataset,
        version,
        shards,
        funnel=funnel,
        config=config,
        sources=sources,
        parents=parents,
        contents=contents_of(kept_contents(kept, modality)),
        modality=modality,
    )
