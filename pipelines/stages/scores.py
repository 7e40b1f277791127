"""The build's per-row record: `scores.parquet` (every input row) and `rejects_sample.parquet`.

`score_table` joins what each stage measured onto every input row (`catalog.scores.SCHEMA`):
the text scores of `pipelines.filters.chain`, img2dataset's status and original size, the
image stage's decode and pHash, the dedup representative, and the row's final stage and
reason. `rejects_sample` picks up to `per_reason` rejected rows per reason
(`catalog.scores.sample_order`) and adds their scrubbed caption and a thumbnail read from
the raw download shards while the work folder still exists (a duplicate also gets its
representative's thumbnail; a refresh's carried representative has none).
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from catalog.parquet import read_parquet
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


def rejects_sample(scores: pa.Table, text: pa.Table, dl: pa.Table | None, per_reason: int) -> pa.Table:
    """Up to `per_reason` rejected rows per reason, with url, scrubbed caption and thumbnails (SAMPLE_SCHEMA)."""
    rejected = scores.filter(pc.is_valid(scores.column("reason")))
    by_reason: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for i, (key, reason) in enumerate(zip(rejected.column("key").to_pylist(), rejected.column("reason").to_pylist())):
        by_reason[reason].append((sample_order(key), i))
    picked = sorted(i for rows in by_reason.values() for _, i in sorted(rows)[:per_reason])
    sample = rejected.take(pa.array(picked, pa.int64())) if picked else rejected.slice(0, 0)
    sample = aligned(sample.sort_by("row"), text.select(["row", "url", "caption"]))
    rows = sample.column("row").to_pylist()
    reps = sample.column("duplicate_of").to_pylist()
    row_of_key = dict(zip(text.column("key").to_pylist(), text.column("row").to_pylist())) if any(reps) else {}
    rep_rows = [row_of_key.get(k) if k else None for k in reps]
    thumbs = _thumbnails(dl, {r for r in [*rows, *rep_rows] if r is not None}) if dl is not None else {}
    sample = sample.append_column("thumbnail", pa.array([thumbs.get(r) for r in rows], pa.binary()))
    sample = sample.append_column(
        "duplicate_thumbnail", pa.array([None if r is None else thumbs.get(r) for r in rep_rows], pa.binary())
    )
    return sample.select(SAMPLE_SCHEMA.names).cast(SAMPLE_SCHEMA)


def _thumbnails(dl: pa.Table, rows: set[int]) -> dict[int, bytes]:
    """row -> JPEG thumbnail for the `rows` img2dataset fetched (read from their raw shards)."""
    ok = dl.filter(
        pc.and_(
            pc.is_in(dl.column("row"), pa.array(sorted(rows), pa.int64())), pc.equal(dl.column("status"), "success")
        )
    )
    out: dict[int, bytes] = {}
    wanted: dict[str, list[int]] = defaultdict(list)
    for row, raw in zip(ok.column("row").to_pylist(), ok.column("raw").to_pylist()):
        wanted[raw].append(row)
    for raw, raw_rows in sorted(wanted.items()):
        t = read_parquet(raw, columns=["row", "jpg"])
        t = t.filter(pc.is_in(t.column("row"), pa.array(raw_rows, pa.int64())))
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
