"""Parquet tables on local paths or s3:// (atomic writes through catalog.storage)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import storage


def write_parquet(uri: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    storage.write_bytes(uri, sink.getvalue().to_pybytes())


def read_parquet(uri: str, columns: list[str] | None = None) -> pa.Table:
    with storage.open_read(uri) as f:
        return pq.read_table(f, columns=columns)


def arrow_filesystem(uris: list[str]):
    """(pyarrow filesystem or None for local, paths inside it) for Ray Data readers."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    if not uris or not storage.is_remote(uris[0]):
        return None, [os.path.abspath(u) for u in uris]
    fs, _ = storage.filesystem(uris[0])
    return PyFileSystem(FSSpecHandler(fs)), [storage.filesystem(u)[1] for u in uris]
