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

A local folder as `source.urls` (pair or image modality) is a folder of images with a
caption table (`source.caption_table`, default the one of `CAPTION_TABLES` present: a
`file` column naming an image inside the folder, and for pairs the caption column
`source.caption_col`; several rows per file = several captions of one image). Row i
becomes `url = file:///ABS/FOLDER/FILE#K`, K = the row's index among the rows of its
file, so every row has its own key; img2dataset reads file:// URLs with urllib like any
other, and a missing file fails there (`download_failed`), so no row is lost. A .tsv
caption table is read as Python's `csv` module writes it (a field holding `"` is quoted,
the quote doubled); the manifest's source entry is the caption table (its sha256).

`source.keep_columns`: those columns (string, integer, float or boolean) are read too and
come out as `keep.NAME` columns of the table (`KEEP_PREFIX`), which the build joins onto
each kept sample, whose json carries them as `NAME` (a null as JSON null).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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


KEEP_PREFIX = "keep."  # source.keep_columns NAME -> table column "keep.NAME"
FILE_COL = "file"  # a folder source's caption table: the image file of each row
CAPTION_TABLES = ("captions.tsv", "captions.csv", "captions.parquet")  # a folder source's default tables
_KEEP_HINT = "listed in source.keep_columns"


def kept_fields(table: pa.Table) -> list[str]:
    """The `keep.NAME` columns of a source table (or of a table joined from it), in order."""
    return [c for c in table.column_names if c.startswith(KEEP_PREFIX)]


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
    if not storage.is_remote(uri) and os.path.isdir(uri):
        return _read_folder(cfg)
    if cfg.caption_table is not None:
        raise SourceError(f"{uri}: source.caption_table is read only when source.urls is a local folder")
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
    wanted, hint = columns_read(cfg), _COLUMN_HINT[cfg.modality]
    if fmt == "parquet":
        table = _read_parquet(uri, data, wanted, hint, cfg.keep_columns)
    elif fmt == "txt":
        if cfg.keep_columns:
            raise SourceError(f"{uri}: a .txt source has only captions, no columns to keep (source.keep_columns)")
        table = _read_lines(uri, data, cfg.caption_col)
    else:
        table = _read_text(uri, data, fmt, wanted, hint, cfg.keep_columns)
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
    out.update(_kept_columns(uri, table, cfg.keep_columns))
    return Source(pa.table(out), uri, hashlib.sha256(data).hexdigest())


def _kept_columns(uri: str, table: pa.Table, names: list[str]) -> dict[str, pa.Array]:
    """`keep.NAME` -> the column, for each name of source.keep_columns (strings verbatim, nulls kept)."""
    out = {}
    for name in names:
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            col = col.cast(pa.string())
        elif pa.types.is_null(t):  # every value null: a string column of nulls (Arrow joins need a real type)
            col = pa.nulls(len(col), pa.string())
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise SourceError(
                f"{uri}: column {name!r} has type {t}; source.keep_columns carries string, integer, float or boolean columns"
            )
        out[KEEP_PREFIX + name] = col
    return out


def _read_folder(cfg: SourceConfig) -> Source:
    """A local folder of images + a caption table -> (row, url, caption) with file:// URLs (see the module doc)."""
    where = cfg.urls
    folder = Path(where).resolve()
    if cfg.modality == "text":
        raise SourceError(f"{where}: is a folder of images; a text source reads one caption file (source.urls)")
    if cfg.url_col != "url":
        raise SourceError(
            f"{where}: a folder source names its images in the caption table's {FILE_COL!r} column; "
            "source.url_col is not read"
        )
    if cfg.caption_table is not None:
        table_path = folder / cfg.caption_table
        if not table_path.is_file():
            raise SourceError(f"{table_path}: caption table not found (source.caption_table)")
    else:
        present = [name for name in CAPTION_TABLES if (folder / name).is_file()]
        if len(present) != 1:
            found = f"found {', '.join(present)}" if present else "found none"
            raise SourceError(
                f"{where}: a folder source needs one caption table ({', '.join(CAPTION_TABLES)}; {found}); "
                "set source.caption_table"
            )
        table_path = folder / present[0]
    uri = str(table_path)
    fmt = cfg.format or next((f for f in ("parquet", "csv", "tsv") if uri.lower().endswith("." + f)), None)
    if fmt not in ("parquet", "csv", "tsv"):
        raise SourceError(f"{uri}: a caption table is a parquet, csv or tsv file (name it so, or set source.format)")
    data = table_path.read_bytes()
    if not data:
        raise SourceError(f"{uri}: empty file")
    wanted = [FILE_COL] + ([cfg.caption_col] if cfg.modality == "pair" else [])
    hint = f"a folder source's caption table needs {FILE_COL!r}" + (
        " and source.caption_col" if cfg.modality == "pair" else ""
    )
    if fmt == "parquet":
        table = _read_parquet(uri, data, wanted, hint, cfg.keep_columns)
    else:
        table = _read_text(uri, data, fmt, wanted, hint, cfg.keep_columns, quoted=True)
    if table.num_rows == 0:
        raise SourceError(f"{uri}: no rows")
    cols = {}
    for name in wanted:
        col = table.column(name).combine_chunks()
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise SourceError(f"{uri}: column {name!r} has type {col.type}, expected string")
        cols[name] = col.cast(pa.string())
    seen: Counter[str] = Counter()
    urls = []
    for i, name in enumerate(cols[FILE_COL].to_pylist()):
        rel = PurePosixPath(name or "")
        if not name or not name.strip() or rel.is_absolute() or ".." in rel.parts or "\\" in name:
            raise SourceError(f"{uri}: column {FILE_COL!r}, row {i}: not a file name inside {folder}")
        urls.append(f"{(folder / rel).as_uri()}#{seen[name]}")
        seen[name] += 1
    out: dict[str, pa.Array] = {
        "row": pa.array(range(table.num_rows), pa.int64()),
        "url": pa.array(urls, pa.string()),
    }
    if cfg.modality == "pair":
        out["caption"] = cols[cfg.caption_col].fill_null("")
    out.update(_kept_columns(uri, table, cfg.keep_columns))
    return Source(pa.table(out), uri, hashlib.sha256(data).hexdigest())


def _read_parquet(uri: str, data: bytes, wanted: list[str], hint: str, keep: list[str]) -> pa.Table:
    try:
        pf = pq.ParquetFile(io.BytesIO(data))
    except pa.ArrowException as exc:
        raise SourceError(f"{uri}: not a readable parquet file ({type(exc).__name__})") from None
    names = pf.schema_arrow.names
    _require_columns(uri, names, wanted, hint)
    _require_columns(uri, names, keep, _KEEP_HINT)
    return pf.read(columns=list(dict.fromkeys([*wanted, *keep])))


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


def _read_text(
    uri: str, data: bytes, fmt: str, wanted: list[str], hint: str, keep: list[str], quoted: bool = False
) -> pa.Table:
    """A csv/tsv file's `wanted` + `keep` columns as strings. `quoted`: a tsv file's fields
    may be quoted as Python's csv module writes them (a csv file's always may)."""
    _check_utf8(uri, data)
    headerless = fmt == "tsv_headerless"  # modality pair only (the config checks it)
    delimiter = "," if fmt == "csv" else "\t"
    quoting = fmt == "csv" or quoted
    if headerless:
        wanted = ["url", "caption"]
        read = pacsv.ReadOptions(column_names=["caption", "url"])
    else:
        header = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        names = next(iter(_csv_rows(header, delimiter, quoting)), [])
        _require_columns(uri, names, wanted, hint)
        _require_columns(uri, names, keep, _KEEP_HINT)
        wanted = list(dict.fromkeys([*wanted, *keep]))
        read = pacsv.ReadOptions()
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False)
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


def _csv_rows(line: str, delimiter: str, quoting: bool):
    import csv

    if quoting:
        return csv.reader([line], delimiter=delimiter)
    return [line.split(delimiter)]


_COLUMN_HINT = {  # what to set when a column is missing, by modality
    "pair": "set source.url_col / source.caption_col",
    "image": "an image source reads only its URL column; set source.url_col",
    "text": "a text source reads only its caption column; set source.caption_col",
}


def _require_columns(uri: str, names: list[str], wanted: list[str], hint: str) -> None:
    for col in wanted:
        if col not in names:
            raise SourceError(f"{uri}: column {col!r} not found (columns: {', '.join(names)}); {hint}")


def _check_urls(uri: str, url_col: str, urls: pa.Array) -> None:
    bad = pc.or_kleene(pc.is_null(urls), pc.equal(pc.utf8_trim_whitespace(urls), ""))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        i = pc.index(bad, True).as_py()
        raise SourceError(f"{uri}: column {url_col!r}, row {i}: empty URL")
