"""Parquet tables on local paths or s3:// (atomic writes through catalog.storage)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import storage


def write_parquet(uri: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    storage.write_bytes(uri, sink.getvalue().to_pybytes())


def read_parquet(uri: str, columns: list[str] | None = None, filter: Any = None) -> pa.Table:
    """The table at `uri` (those `columns`); `filter` (a `pyarrow.compute` expression) keeps only
    the rows it holds for, skipping row groups whose statistics rule them out."""
    with storage.open_read(uri) as f:
        return pq.read_table(f, columns=columns, filters=filter)


def arrow_filesystem(uris: list[str]):
    """(pyarrow filesystem or None for local, paths inside it) for Ray Data readers."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    if not uris or not storage.is_remote(uris[0]):
        return None, [os.path.abspath(u) for u in uris]
    fs, _ = storage.filesystem(uris[0])
    return PyFileSystem(FSSpecHandler(fs)), [storage.filesystem(u)[1] for u in uris]


def num_rows(uri: str) -> int:
    """The rows of a parquet file, from its footer (nothing else is read)."""
    with storage.open_read(uri) as f:
        return pq.ParquetFile(f).metadata.num_rows


def read_schema(uri: str) -> pa.Schema:
    with storage.open_read(uri) as f:
        return pq.ParquetFile(f).schema_arrow


def row_group_slices(uri: str, max_rows: int) -> list[list[int]]:
    """The row groups of a parquet file in runs of consecutive groups of about `max_rows` rows
    (at least one group each): the units of tasks that read a large published table piece by piece."""
    with storage.open_read(uri) as f:
        meta = pq.ParquetFile(f).metadata
    slices: list[list[int]] = []
    held = 0
    for g in range(meta.num_row_groups):
        rows = meta.row_group(g).num_rows
        if not slices or (held and held + rows > max_rows):
            slices.append([])
            held = 0
        slices[-1].append(g)
        held += rows
    return slices


def read_row_groups(uri: str, groups: list[int], columns: list[str] | None = None) -> pa.Table:
    with storage.open_read(uri) as f:
        return pq.ParquetFile(f).read_row_groups(groups, columns=columns)


def iter_row_groups(uri: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """A parquet file's rows one row group at a time (a published table streamed, never read whole)."""
    with storage.open_read(uri) as f:
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            yield pf.read_row_group(g, columns=columns)
