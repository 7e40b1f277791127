"""Stage `source`: read and validate the URL list before any work starts.

Accepted: parquet (e.g. LAION: `url_col: URL`, `caption_col: TEXT`), csv, tsv with a
header, and CC3M-style headerless tsv (`caption<TAB>url`). Local paths or s3:// URIs.
Every failure is a `SourceError` naming the file and, where one is at fault, the column
or line. Values of captions never appear in messages (they may hold person names).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalog import storage
from catalog.errors import UserError
from pipelines.stages.config import SourceConfig


class SourceError(UserError, ValueError):
    """The URL list is unusable; the message names the file and the column or line."""


@dataclass(frozen=True)
class Source:
    """Validated input: a table (row, url, caption) plus provenance for the manifest."""

    table: pa.Table
    uri: str
    sha256: str

    def manifest_entry(self) -> dict:
        return {"uri": self.uri, "rows": self.table.num_rows, "sha256": self.sha256}


def detect_format(cfg: SourceConfig) -> str:
    if cfg.format is not None:
        return cfg.format
    name = cfg.urls.lower()
    for fmt in ("parquet", "csv", "tsv"):
        if name.endswith("." + fmt):
            return fmt
    raise SourceError(
        f"{cfg.urls}: cannot tell the format from the file name; set source.format (parquet, csv, tsv, tsv_headerless)"
    )


def read_source(cfg: SourceConfig) -> Source:
    """Read `cfg.urls` into a (row, url, caption) table or raise SourceError."""
    uri = cfg.urls
    fmt = detect_format(cfg)
    storage.check_reachable(uri)
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        raise SourceError(f"{uri}: file not found (source.urls)") from None
    except IsADirectoryError:
        raise SourceError(f"{uri}: is a directory, expected one {fmt} file (source.urls)") from None
    if not data:
        raise SourceError(f"{uri}: empty file")
    if fmt == "parquet":
        url_col, caption_col, table = _read_parquet(uri, data, cfg)
    else:
        url_col, caption_col, table = _read_text(uri, data, fmt, cfg)
    if table.num_rows == 0:
        raise SourceError(f"{uri}: no rows")
    urls = table.column(url_col).combine_chunks()
    captions = table.column(caption_col).combine_chunks()
    for name, col in ((url_col, urls), (caption_col, captions)):
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise SourceError(f"{uri}: column {name!r} has type {col.type}, expected string")
    _check_urls(uri, url_col, urls)
    captions = captions.cast(pa.string()).fill_null("")
    out = pa.table(
        {"row": pa.array(range(table.num_rows), pa.int64()), "url": urls.cast(pa.string()), "caption": captions}
    )
    return Source(out, uri, hashlib.sha256(data).hexdigest())


def _read_parquet(uri: str, data: bytes, cfg: SourceConfig) -> tuple[str, str, pa.Table]:
    try:
        pf = pq.ParquetFile(io.BytesIO(data))
    except pa.ArrowException as exc:
        raise SourceError(f"{uri}: not a readable parquet file ({type(exc).__name__})") from None
    names = pf.schema_arrow.names
    _require_columns(uri, names, [cfg.url_col, cfg.caption_col])
    return cfg.url_col, cfg.caption_col, pf.read(columns=[cfg.url_col, cfg.caption_col])


def _read_text(uri: str, data: bytes, fmt: str, cfg: SourceConfig) -> tuple[str, str, pa.Table]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"{uri}: not UTF-8 text (line {line}, byte offset {exc.start})") from None
    headerless = fmt == "tsv_headerless"
    delimiter = "," if fmt == "csv" else "\t"
    if headerless:
        url_col, caption_col = "url", "caption"
        read = pacsv.ReadOptions(column_names=["caption", "url"])
    else:
        url_col, caption_col = cfg.url_col, cfg.caption_col
        header = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        names = next(iter(_csv_rows(header, delimiter, fmt)), [])
        _require_columns(uri, names, [url_col, caption_col])
        read = pacsv.ReadOptions()
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if fmt == "csv" else False)
    convert = pacsv.ConvertOptions(
        column_types={url_col: pa.string(), caption_col: pa.string()},
        include_columns=[url_col, caption_col],
        strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        # Arrow's message names the row ("CSV parse error: Expected 2 columns, got 3: ..."), but
        # echoes the row's text; keep only the part before the quoted content.
        reason = str(exc).split(":", 2)
        raise SourceError(f"{uri}: cannot parse as {fmt}: {':'.join(reason[:2]).strip()}") from None
    return url_col, caption_col, table


def _csv_rows(line: str, delimiter: str, fmt: str):
    import csv

    if fmt == "csv":
        return csv.reader([line], delimiter=delimiter)
    return [line.split(delimiter)]


def _require_columns(uri: str, names: list[str], wanted: list[str]) -> None:
    for col in wanted:
        if col not in names:
            raise SourceError(
                f"{uri}: column {col!r} not found (columns: {', '.join(names)}); set source.url_col / source.caption_col"
            )


def _check_urls(uri: str, url_col: str, urls: pa.Array) -> None:
    bad = pc.or_kleene(pc.is_null(urls), pc.equal(pc.utf8_trim_whitespace(urls), ""))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        i = pc.index(bad, True).as_py()
        raise SourceError(f"{uri}: column {url_col!r}, row {i}: empty URL")
