"""The published files of a version: kept.parquet, rejects.parquet, scores.parquet,
rejects_sample.parquet (catalog.scores), then stats.json + manifest.json.

The parquet tables are the build's own; stats.json and manifest.json (last: it makes the
version visible) are written by the one manifest writer, `catalog.publish.publish_version`,
with the schema/stats/preview computed from the kept table by `catalog.publish.contents_of`
(the same code that reads them from shards), so no shard is read back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from catalog import storage
from catalog.parquet import write_parquet
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


def write_tables(
    out: str, kept: pa.Table, rejects: pa.Table, scores: pa.Table | None = None, sample: pa.Table | None = None
) -> None:
    """kept.parquet (KEPT_COLUMNS + IMAGE_COLUMNS), rejects.parquet (never a caption) under `out`;
    scores.parquet and rejects_sample.parquet (scrubbed captions only) when given."""
    columns = KEPT_COLUMNS + [c for c in IMAGE_COLUMNS if c in kept.column_names]
    write_parquet(storage.join(out, "kept.parquet"), kept.select(columns))
    write_parquet(storage.join(out, "rejects.parquet"), rejects.select(REJECT_COLUMNS))
    if scores is not None:
        write_parquet(storage.join(out, SCORES_FILE), scores.select(SCHEMA.names).cast(SCHEMA))
    if sample is not None:
        write_parquet(storage.join(out, REJECTS_SAMPLE_FILE), sample.select(SAMPLE_SCHEMA.names).cast(SAMPLE_SCHEMA))


def kept_contents(
    kept: pa.Table, modality: str = "pair"
) -> Iterator[tuple[str, str | None, dict[str, Any], tuple[str, ...]]]:
    """(key, caption or None, sample json fields the stats use, members) per kept row, in shard order."""
    columns = ("key", "caption", "orig_width", "orig_height", "lang_score")
    for key, caption, w, h, lid in zip(*(kept.column(c).to_pylist() for c in columns)):
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
    kept: pa.Table,
    rejects: pa.Table,
    shards: list[dict[str, Any]],
    scores: pa.Table | None = None,
    sample: pa.Table | None = None,
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
