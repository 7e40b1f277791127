"""Stage `source`: read and validate the input list before any work starts.

Accepted, by `source.modality`:
- "pair": parquet (e.g. LAION: `url_col: URL`, `caption_col: TEXT`), csv, tsv with a
  header, and CC3M-style headerless tsv (`caption<TAB>url`) -> table (row, url, caption);
- "image": parquet, csv, tsv with a URL column (any caption column is not read) -> (row, url);
- "text": parquet, csv, tsv with a caption column, or a .txt file of one UTF-8 caption per
  line (line i+1 = row i) -> (row, key, caption), `key` = `text_key(row, caption)`.
Local paths or s3:// URIs. Every failure is a `SourceError` naming the file and, where one
is at fault, the column or line. Values of captions never appear in messages (they may
hold person names).
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
from catalog.keys import sample_key
from pipelines.stages.config import FORMATS, SourceConfig


class SourceError(UserError, ValueError):
    """The URL list is unusable; the message names the file and the column or line."""


def text_key(row: int, caption: str) -> str:
    """The sample key of row `row` (0-based) of a text-only source with raw caption `caption`
    (a null caption reads as ""): `sample_key("text:{row}:{caption}")`, 16 hex chars. Stable
    (the same file row gives the same key in every run, so appending rows keeps the old
    keys), and unique within a source (rows differ); an edited row gets a new key."""
    return sample_key(f"text:{row}:{caption}")


@dataclass(frozen=True)
class Source:
    """Validated input plus provenance for the manifest. `table` by modality: pair (row, url,
    caption), image (row, url), text (row, key, caption)."""

    table: pa.Table
    uri: str
    sha256: str

    def manifest_entry(self) -> dict:
        return {"uri": self.uri, "rows": self.table.num_rows, "sha256": self.sha256}

    def keys(self) -> list[str]:
        """The sample key of every row: `sample_key(url)`, or a text source's `key` column."""
        if "key" in self.table.column_names:
            return self.table.column("key").to_pylist()
        return [sample_key(u) for u in self.table.column("url").to_pylist()]


def detect_format(cfg: SourceConfig) -> str:
    if cfg.format is not None:
        return cfg.format
    name = cfg.urls.lower()
    for fmt in FORMATS[cfg.modality]:
        if fmt != "tsv_headerless" and name.endswith("." + fmt):
            return fmt
    raise SourceError(
        f"{cfg.urls}: cannot tell the format from the file name; set source.format ({', '.join(FORMATS[cfg.modality])})"
    )


def columns_read(cfg: SourceConfig) -> list[str]:
    """The columns a source of `cfg.modality` reads, in the table's order."""
    return {"pair": [cfg.url_col, cfg.caption_col], "image": [cfg.url_col], "text": [cfg.caption_col]}[cfg.modality]


def read_source(cfg: SourceConfig) -> Source:
    """Read `cfg.urls` into the modality's table (see `Source`) or raise SourceError."""
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
        table = _read_parquet(uri, data, cfg)
    elif fmt == "txt":
        table = _read_lines(uri, data, cfg.caption_col)
    else:
        table = _read_text(uri, data, fmt, cfg)
    if table.num_rows == 0:
        raise SourceError(f"{uri}: no rows")
    headerless = fmt == "tsv_headerless"
    url_col = "url" if headerless else cfg.url_col
    caption_col = "caption" if headerless else cfg.caption_col
    cols = {}
    for name in columns_read(cfg) if not headerless else [url_col, caption_col]:
        col = table.column(name).combine_chunks()
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise SourceError(f"{uri}: column {name!r} has type {col.type}, expected string")
        cols[name] = col.cast(pa.string())
    out: dict[str, pa.Array] = {"row": pa.array(range(table.num_rows), pa.int64())}
    if cfg.modality != "text":
        _check_urls(uri, url_col, cols[url_col])
        out["url"] = cols[url_col]
    if cfg.modality != "image":
        captions = cols[caption_col].fill_null("")
        if cfg.modality == "text":
            out["key"] = pa.array([text_key(i, c) for i, c in enumerate(captions.to_pylist())], pa.string())
        out["caption"] = captions
    return Source(pa.table(out), uri, hashlib.sha256(data).hexdigest())


def _read_parquet(uri: str, data: bytes, cfg: SourceConfig) -> pa.Table:
    try:
        pf = pq.ParquetFile(io.BytesIO(data))
    except pa.ArrowException as exc:
        raise SourceError(f"{uri}: not a readable parquet file ({type(exc).__name__})") from None
    names = pf.schema_arrow.names
    _require_columns(uri, names, columns_read(cfg), cfg.modality)
    return pf.read(columns=columns_read(cfg))


def _check_utf8(uri: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"{uri}: not UTF-8 text (line {line}, byte offset {exc.start})") from None


def _read_lines(uri: str, data: bytes, caption_col: str) -> pa.Table:
    """A .txt source: one caption per line (LF or CRLF), line i+1 = row i; an empty line is an empty caption."""
    text = _check_utf8(uri, data)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SourceError(f"{uri}: line {line}: NUL byte (a .txt source holds one caption per line, UTF-8 text)")
    lines = text.split("\n")
    if lines[-1] == "":  # the newline ending the last line
        lines.pop()
    return pa.table({caption_col: pa.array([line.removesuffix("\r") for line in lines], pa.string())})


def _read_text(uri: str, data: bytes, fmt: str, cfg: SourceConfig) -> pa.Table:
    _check_utf8(uri, data)
    headerless = fmt == "tsv_headerless"  # modality pair only (the config checks it)
    delimiter = "," if fmt == "csv" else "\t"
    if headerless:
        wanted = ["url", "caption"]
        read = pacsv.ReadOptions(column_names=["caption", "url"])
    else:
        wanted = columns_read(cfg)
        header = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        names = next(iter(_csv_rows(header, delimiter, fmt)), [])
        _require_columns(uri, names, wanted, cfg.modality)
        read = pacsv.ReadOptions()
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if fmt == "csv" else False)
    convert = pacsv.ConvertOptions(
        column_types={col: pa.string() for col in wanted},
        include_columns=wanted,
        strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        # Arrow's message names the row ("CSV parse error: Expected 2 columns, got 3: ..."), but
        # echoes the row's text; keep only the part before the quoted content.
        reason = str(exc).split(":", 2)
        raise SourceError(f"{uri}: cannot parse as {fmt}: {':'.join(reason[:2]).strip()}") from None
    return table


def _csv_rows(line: str, delimiter: str, fmt: str):
    import csv

    if fmt == "csv":
        return csv.reader([line], delimiter=delimiter)
    return [line.split(delimiter)]


_COLUMN_HINT = {  # what to set when a column is missing, by modality
    "pair": "set source.url_col / source.caption_col",
    "image": "an image source reads only its URL column; set source.url_col",
    "text": "a text source reads only its caption column; set source.caption_col",
}


def _require_columns(uri: str, names: list[str], wanted: list[str], modality: str) -> None:
    for col in wanted:
        if col not in names:
            raise SourceError(
                f"{uri}: column {col!r} not found (columns: {', '.join(names)}); {_COLUMN_HINT[modality]}"
            )


def _check_urls(uri: str, url_col: str, urls: pa.Array) -> None:
    bad = pc.or_kleene(pc.is_null(urls), pc.equal(pc.utf8_trim_whitespace(urls), ""))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        i = pc.index(bad, True).as_py()
        raise SourceError(f"{uri}: column {url_col!r}, row {i}: empty URL")
