"""The build's per-row record: `scores.parquet` (every input row) and `rejects_sample.parquet`.

`score_table` joins what each stage measured onto every input row (`catalog.scores.SCHEMA`):
the text scores of `pipelines.filters.chain`, img2dataset's status and original size, the
image stage's decode and pHash, the dedup representative, and the row's final stage and
reason. `pick_sample` picks up to `per_reason` rejected rows per reason
(`catalog.scores.sample_order`) from the parts' candidates, and `sample_part` (a task per
part) adds their scrubbed caption and a thumbnail read from the raw download shards while
the work folder still exists (a duplicate also gets its representative's thumbnail; a
refresh's carried representative has none).
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from catalog.parquet import read_parquet, write_parquet
from catalog.scores import SAMPLE_SCHEMA, SCHEMA, THUMBNAIL_SIDE, sample_order

_DOWNLOAD = {"status": "download_status", "error_message": "download_error"}
_DOWNLOAD_SIZE = {"original_width": "orig_width", "original_height": "orig_height"}


def score_table(
    text: pa.Table,
    rejects: pa.Table,
    dl: pa.Table | None = None,
    img: pa.Table | None = None,
    dd: pa.Table | None = None,
) -> pa.Table:
    """One row per input row (`text` has them all), in row order, with `catalog.scores.SCHEMA`'s columns."""
    skip = ("row", "key", "reason", "stage")
    t = text.select(["row", "key", *[c for c in SCHEMA.names if c in text.column_names and c not in skip]])
    parts = [rejects.select(["row", "stage", "reason"])]
    if dl is not None:
        d = dl.select(["row", *_DOWNLOAD, *_DOWNLOAD_SIZE, "sha256"])
        parts.append(d.rename_columns([{**_DOWNLOAD, **_DOWNLOAD_SIZE}.get(c, c) for c in d.column_names]))
    if img is not None:
        parts.append(img.select(["row", "decoded", "phash"]))
    if dd is not None:
        parts.append(dd.select(["row", "duplicate_of"]))
    t = t.sort_by("row")
    for part in parts:
        t = aligned(t, part)
    n = t.num_rows
    columns = [
        t.column(c).cast(SCHEMA.field(c).type) if c in t.column_names else pa.nulls(n, SCHEMA.field(c).type)
        for c in SCHEMA.names
    ]
    return pa.table(columns, schema=SCHEMA)


def aligned(left: pa.Table, right: pa.Table) -> pa.Table:
    """`left` plus `right`'s columns (other than `row`) for each of its rows, null where `right` has none.

    A lookup by `row`, not an Arrow join: joins refuse list columns such as `pos`.
    """
    index = pc.index_in(left.column("row"), value_set=right.column("row"))
    picked = right.take(index)
    for name in right.column_names:
        if name != "row":
            left = left.append_column(name, picked.column(name))
    return left


def pick_sample(candidates: list[str], per_reason: int) -> pa.Table:
    """(row, key, reason) of the first `per_reason` rejected rows per reason by `sample_order`, from
    the parts' candidate files (`assemble.sample_candidates`), read one at a time."""
    best: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for uri in candidates:
        t = read_parquet(uri)
        for row, key, reason, order in zip(*(t.column(c).to_pylist() for c in ("row", "key", "reason", "order"))):
            best[reason].append((order, row, key))
        for reason in best:
            best[reason] = sorted(best[reason])[:per_reason]
    rows = sorted((row, key, reason) for reason, items in best.items() for _, row, key in items)
    return pa.table(
        {
            "row": pa.array([r for r, _, _ in rows], pa.int64()),
            "key": pa.array([k for _, k, _ in rows], pa.string()),
            "reason": pa.array([x for _, _, x in rows], pa.string()),
        }
    )


def sample_part(job: dict[str, Any]) -> dict[str, Any]:
    """Ray task: the rejects-sample rows of one part (`job`: rows, scores and text part files, the
    index of the image parts (`_thumbnails`), duplicates file, out) with their url,
    scrubbed caption and thumbnails (SAMPLE_SCHEMA); the driver only concatenates the parts' files."""
    wanted = pa.array(job["rows"], pa.int64())
    scores = read_parquet(job["scores"])
    sample = scores.filter(pc.is_in(scores.column("row"), value_set=wanted)).sort_by("row")
    text = read_parquet(job["text"], columns=["row", "url", "caption"])
    sample = aligned(sample, text.filter(pc.is_in(text.column("row"), value_set=wanted)))
    rows = sample.column("row").to_pylist()
    rep_rows: list[int | None] = [None] * len(rows)
    duplicated = [r for r, d in zip(rows, sample.column("duplicate_of").to_pylist()) if d]
    if job["duplicates"] is not None and duplicated:  # only the sampled duplicates' rows are read
        dups = read_parquet(job["duplicates"], ["row", "rep_row"], filter=pc.field("row").isin(duplicated))
        rep_of = dict(zip(dups.column("row").to_pylist(), dups.column("rep_row").to_pylist()))
        rep_rows = [rep_of.get(r) if rep_of.get(r, -1) >= 0 else None for r in rows]
    thumbs = _thumbnails(job["images"], {r for r in [*rows, *rep_rows] if r is not None})
    sample = sample.append_column("thumbnail", pa.array([thumbs.get(r) for r in rows], pa.binary()))
    sample = sample.append_column(
        "duplicate_thumbnail", pa.array([None if r is None else thumbs.get(r) for r in rep_rows], pa.binary())
    )
    write_parquet(job["out"], sample.select(SAMPLE_SCHEMA.names).cast(SAMPLE_SCHEMA))
    return {"rows": sample.num_rows}


def _thumbnails(index: str, rows: set[int]) -> dict[int, bytes]:
    """row -> JPEG thumbnail for the `rows` img2dataset fetched, read from their raw shards, found
    through the image parts whose row range holds them (`index`: uri, first_row, last_row)."""
    out: dict[int, bytes] = {}
    if not rows:
        return out
    parts = read_parquet(index).sort_by("first_row")
    firsts, lasts = parts.column("first_row").to_pylist(), parts.column("last_row").to_pylist()
    holding = set()
    for r in rows:
        i = bisect_right(firsts, r) - 1  # the last image part starting at or before r
        if i >= 0 and r <= lasts[i]:
            holding.add(i)
    uris = [parts.column("uri")[i].as_py() for i in sorted(holding)]
    wanted: dict[str, list[int]] = defaultdict(list)
    for part in uris:
        t = read_parquet(part, columns=["row", "status", "raw"])
        t = t.filter(
            pc.and_(
                pc.is_in(t.column("row"), value_set=pa.array(sorted(rows), pa.int64())),
                pc.equal(t.column("status"), "success"),
            )
        )
        for row, raw in zip(t.column("row").to_pylist(), t.column("raw").to_pylist()):
            wanted[raw].append(row)
    for raw, raw_rows in sorted(wanted.items()):
        t = read_parquet(raw, columns=["row", "jpg"])
        t = t.filter(pc.is_in(t.column("row"), value_set=pa.array(raw_rows, pa.int64())))
        for row, jpg in zip(t.column("row").to_pylist(), t.column("jpg").to_pylist()):
            thumb = thumbnail(jpg)
            if thumb is not None:
                out[row] = thumb
    return out


def thumbnail(data: bytes | None) -> bytes | None:
    """A JPEG whose longer side is at most THUMBNAIL_SIDE px, or None when `data` does not decode."""
    try:
        with Image.open(io.BytesIO(data or b"")) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
            return buf.getvalue()
    except Exception:  # noqa: BLE001 - whatever PIL raises, there is no picture to show
        return None


def merge_samples(samples: list[pa.Table], per_reason: int) -> pa.Table:
    """One rejects sample from several (a refresh: the parent's and the new rows'), re-capped per reason."""
    t = pa.concat_tables([s.cast(SAMPLE_SCHEMA) for s in samples])
    order = sorted(range(t.num_rows), key=lambda i: sample_order(t.column("key")[i].as_py()))
    seen: dict[Any, int] = defaultdict(int)
    keep = []
    for i in order:
        reason = t.column("reason")[i].as_py()
        if seen[reason] < per_reason:
            seen[reason] += 1
            keep.append(i)
    return t.take(pa.array(sorted(keep), pa.int64()))
