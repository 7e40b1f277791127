"""Stage `source`: read and validate the input list before any work starts.

Accepted, by `source.modality`:
- "pair": parquet (e.g. LAION: `url_col: URL`, `caption_col: TEXT`), csv, tsv with a
  header, and CC3M-style headerless tsv (`caption<TAB>url`) -> table (row, url, caption);
- "image": parquet, csv, tsv with a URL column (any caption column is not read) -> (row, url);
- "text": parquet, csv, tsv with a caption column, or a .txt file of one UTF-8 caption per
  line (line i+1 = row i) -> (row, key, caption), `key` = `text_key(row, caption)`.
Local paths or s3:// URIs. `source.urls` may also name many such files, all of one format:
a folder of them (every file with the format's extension; a local folder holding a caption
table is a folder of images, below) or a glob (`pool/part-*.parquet`). Files are read in
name order and rows numbered through them (row = the rows of the files before + the row
within the file), so a file added that sorts last keeps every earlier row id and key;
every file's columns (a parquet schema, a csv/tsv header) are checked before any file's
rows are read, and the manifest's `sources` lists each file with its rows and sha256.
Every failure is a `SourceError` naming the file and, where one
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

import codecs
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalog import storage
from catalog.errors import UserError
from catalog.keys import sample_key
from catalog.parquet import write_parquet
from pipelines.stages.config import FORMATS, SourceConfig


class SourceError(UserError, ValueError):
    """The URL list is unusable; the message names the file and the column or line."""


KEEP_PREFIX = "keep."  # source.keep_columns NAME -> table column "keep.NAME"
FILE_COL = "file"  # a folder source's caption table: the image file of each row
CAPTION_TABLES = ("captions.tsv", "captions.csv", "captions.parquet")  # a folder source's default tables
_KEEP_HINT = "listed in source.keep_columns"
BATCH_ROWS = 10_000  # rows per streamed batch of a parquet or txt file (one part of rows)
PART_ROWS = 10_000  # rows per source part: the unit of the stages' tasks
_BLOCK = 8 << 20  # bytes per read of a file's streaming passes (and per csv/tsv batch)


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
    uri: str  # source.urls as given
    files: list[dict]  # {"uri", "rows", "sha256"} per file, in row order: the manifest's `sources`

    @property
    def sha256(self) -> str:
        """The sha256 of the one file, or of the files' sha256s in order."""
        if len(self.files) == 1:
            return self.files[0]["sha256"]
        return hashlib.sha256("".join(f["sha256"] for f in self.files).encode()).hexdigest()

    def keys(self) -> list[str]:
        """The sample key of every row: `sample_key(url)`, or a text source's `key` column."""
        if "key" in self.table.column_names:
            return self.table.column("key").to_pylist()
        return [sample_key(u) for u in self.table.column("url").to_pylist()]


def detect_format(cfg: SourceConfig, uri: str | None = None) -> str:
    """The format of `uri` (default `cfg.urls`): `source.format`, else from the file name."""
    if cfg.format is not None:
        return cfg.format
    uri = uri or cfg.urls
    name = uri.lower()
    for fmt in FORMATS[cfg.modality]:
        if fmt != "tsv_headerless" and name.endswith("." + fmt):
            return fmt
    raise SourceError(
        f"{uri}: cannot tell the format from the file name; set source.format ({', '.join(FORMATS[cfg.modality])})"
    )


def columns_read(cfg: SourceConfig) -> list[str]:
    """The columns a source of `cfg.modality` reads, in the table's order."""
    return {"pair": [cfg.url_col, cfg.caption_col], "image": [cfg.url_col], "text": [cfg.caption_col]}[cfg.modality]


def is_glob(uri: str) -> bool:
    return any(c in uri for c in "*?[")


def list_files(cfg: SourceConfig) -> list[str]:
    """The files of `source.urls`, sorted: the file itself; every file of a folder (of URL lists,
    local or s3://, with no caption table) whose name ends in the format's extension; or the
    files a glob matches. Row ids run through the files in this order."""
    uri = cfg.urls
    if is_glob(uri):
        fs, path = storage.filesystem(uri)
        found = sorted(p for p in fs.glob(path) if fs.isfile(p))
        files = [f"{uri.split('://')[0]}://{p}" if "://" in uri else p for p in found]
        if not files:
            raise SourceError(f"{uri}: the pattern matches no file (source.urls)")
        return files
    fs, path = storage.filesystem(uri)
    if storage.is_remote(uri) and fs.isdir(path):
        names = storage.listdir(uri)
        exts = _extensions(cfg)
        files = [storage.join(uri, n) for n in names if any(n.lower().endswith(e) for e in exts)]
        if not files:
            raise SourceError(f"{uri}: a folder with no {' / '.join(exts)} file (source.urls)")
        return files
    return [uri]


@dataclass(frozen=True)
class Plan:
    """A source checked before any row is read: its files in row order, their format and sha256
    (`plan_source`). A local folder of images (`folder`) is read whole: its caption table is small."""

    uri: str  # source.urls as given
    files: list[str]
    fmt: str
    sha256s: list[str]
    folder: Source | None = None

    def identity(self) -> list[dict[str, str]]:
        """What names the input of a build: each file and its sha256."""
        return [{"uri": f, "sha256": h} for f, h in zip(self.files, self.sha256s)]


def plan_source(cfg: SourceConfig) -> Plan:
    """Check `cfg.urls` (one file, a folder of files or a glob): every file's columns, then one
    streaming pass over each file's bytes (sha256, UTF-8). A bad file fails here, naming the file
    and the column or line, before any row is read or any work starts."""
    uri = cfg.urls
    if not storage.is_remote(uri) and os.path.isdir(uri) and _is_image_folder(cfg):
        folder = _read_folder(cfg)
        return Plan(folder.uri, [folder.uri], "folder", [folder.files[0]["sha256"]], folder)
    if cfg.caption_table is not None:
        raise SourceError(f"{uri}: source.caption_table is read only when source.urls is a local folder of images")
    if not is_glob(uri):
        storage.check_reachable(uri)
    files = _local_folder_files(cfg) if not storage.is_remote(uri) and os.path.isdir(uri) else list_files(cfg)
    formats = [detect_format(cfg, f) for f in files]
    if len(set(formats)) > 1:
        raise SourceError(f"{uri}: its files mix formats ({', '.join(sorted(set(formats)))}); one format per source")
    for f, fmt in zip(files, formats):
        check_columns(cfg, f, fmt)
    return Plan(uri, files, formats[0], [scan_file(f, formats[0]) for f in files])


def iter_source(cfg: SourceConfig, plan: Plan) -> Iterator[tuple[int, pa.Table]]:
    """(file index, rows) batches of the whole source in row order, `row` numbered through the
    files; a text source's rows get their `key`. Streams: one batch in memory at a time."""
    if plan.folder is not None:
        yield 0, plan.folder.table
        return
    offset = 0
    for i, f in enumerate(plan.files):
        n = 0
        for table in iter_rows(cfg, f, plan.fmt):
            table = table.set_column(0, "row", pc.add(table.column("row"), offset))
            if cfg.modality == "text":
                rows = table.column("row").to_pylist()
                keys = [text_key(r, c) for r, c in zip(rows, table.column("caption").to_pylist())]
                table = table.add_column(1, "key", pa.array(keys, pa.string()))
            n += table.num_rows
            yield i, table
        offset += n


def split_source(cfg: SourceConfig, plan: Plan, wd) -> tuple[list[dict], list[dict]]:
    """Stream the source into part files of at most `PART_ROWS` rows in the build's work folder
    (`source/part-NNNNN.parquet`), the units of every later stage's tasks. Returns (parts: uri,
    rows, first_row; the manifest's `sources`: uri, rows, sha256 per file). The parts hold raw
    captions: the text stage deletes them once every part is checked. Resumable: done once."""
    if wd.done("source"):
        done = wd.marker("source")
        return done["parts"], done["files"]
    parts: list[dict] = []
    rows = [0] * len(plan.files)
    buffer: list[pa.Table] = []

    def flush() -> None:
        table = pa.concat_tables(buffer)
        uri = wd.path("source", f"part-{len(parts):05d}.parquet")
        write_parquet(uri, table)
        parts.append({"uri": uri, "rows": table.num_rows, "first_row": table.column("row")[0].as_py()})
        buffer.clear()

    held = 0
    for i, table in iter_source(cfg, plan):
        rows[i] += table.num_rows
        while table.num_rows:
            take = table.slice(0, PART_ROWS - held)
            buffer.append(take)
            held += take.num_rows
            table = table.slice(take.num_rows)
            if held == PART_ROWS:
                flush()
                held = 0
    if buffer:
        flush()
    files = [{"uri": f, "rows": n, "sha256": h} for f, n, h in zip(plan.files, rows, plan.sha256s)]
    wd.mark("source", {"parts": parts, "files": files})
    return parts, files


def read_source(cfg: SourceConfig) -> Source:
    """Read `cfg.urls` (one file, a folder of files or a glob) whole into the modality's table (see
    `Source`) or raise SourceError. A build streams it instead (`plan_source` + `iter_source`)."""
    plan = plan_source(cfg)
    if plan.folder is not None:
        return plan.folder
    tables, rows = [], [0] * len(plan.files)
    for i, t in iter_source(cfg, plan):
        tables.append(t)
        rows[i] += t.num_rows
    entries = [{"uri": f, "rows": n, "sha256": h} for f, n, h in zip(plan.files, rows, plan.sha256s)]
    return Source(pa.concat_tables(tables), plan.uri, entries)


def _is_image_folder(cfg: SourceConfig) -> bool:
    """A local folder with a caption table (`source.caption_table`, or one of `CAPTION_TABLES`), or with
    no file of the modality's list formats, is a folder of images; else it is a folder of URL lists."""
    folder = cfg.urls
    if cfg.caption_table is not None or any(os.path.isfile(os.path.join(folder, n)) for n in CAPTION_TABLES):
        return True
    return not _list_names(cfg)


def _list_names(cfg: SourceConfig) -> list[str]:
    """The names of the files in local folder `cfg.urls` with the extension of the source's format(s)."""
    exts = tuple(_extensions(cfg))
    folder = cfg.urls
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(exts) and os.path.isfile(os.path.join(folder, n)))


def _extensions(cfg: SourceConfig) -> list[str]:
    if cfg.format is not None:
        return ["." + ("tsv" if cfg.format == "tsv_headerless" else cfg.format)]
    return ["." + f for f in FORMATS[cfg.modality] if f != "tsv_headerless"]


def _local_folder_files(cfg: SourceConfig) -> list[str]:
    return [os.path.join(cfg.urls, n) for n in _list_names(cfg)]


def check_columns(cfg: SourceConfig, uri: str, fmt: str) -> None:
    """The columns `cfg` reads are in `uri` (a parquet file's schema, a csv/tsv file's header line)."""
    wanted, hint = columns_read(cfg), _COLUMN_HINT[cfg.modality]
    if fmt in ("txt", "tsv_headerless"):
        if fmt == "txt" and cfg.keep_columns:
            raise SourceError(f"{uri}: a .txt source has only captions, no columns to keep (source.keep_columns)")
        return
    names = _column_names(uri, fmt)
    _require_columns(uri, names, wanted, hint)
    _require_columns(uri, names, cfg.keep_columns, _KEEP_HINT)


def _column_names(uri: str, fmt: str, quoted: bool = False) -> list[str]:
    """The column names of a parquet file (its schema) or a csv/tsv file (its header line)."""
    try:
        with storage.open_read(uri) as f:
            if not f.read(1):
                raise SourceError(f"{uri}: empty file")
            f.seek(0)
            if fmt == "parquet":
                try:
                    return pq.ParquetFile(f).schema_arrow.names
                except pa.ArrowException as exc:
                    raise SourceError(f"{uri}: not a readable parquet file ({type(exc).__name__})") from None
            first = f.readline()
    except FileNotFoundError:
        raise SourceError(f"{uri}: file not found (source.urls)") from None
    except IsADirectoryError:
        raise SourceError(f"{uri}: is a directory, expected one {fmt} file (source.urls)") from None
    try:
        header = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{uri}: not UTF-8 text (line 1, byte offset {exc.start})") from None
    return next(iter(_csv_rows(header, "," if fmt == "csv" else "\t", fmt == "csv" or quoted)), [])


def scan_file(uri: str, fmt: str) -> str:
    """One streaming pass over the bytes of `uri`: its sha256; a csv/tsv/txt file must be UTF-8
    (the error names the line and byte offset) and a .txt file has no NUL byte."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")() if fmt != "parquet" else None
    lines = offset = 0
    try:
        with storage.open_read(uri) as f:
            while block := f.read(_BLOCK):
                sha.update(block)
                if decoder is not None:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError as exc:
                        at = offset + exc.start
                        line = lines + block.count(b"\n", 0, exc.start) + 1
                        raise SourceError(f"{uri}: not UTF-8 text (line {line}, byte offset {at})") from None
                    if fmt == "txt" and b"\x00" in block:
                        line = lines + block.count(b"\n", 0, block.index(b"\x00")) + 1
                        raise SourceError(
                            f"{uri}: line {line}: NUL byte (a .txt source holds one caption per line, UTF-8 text)"
                        )
                    lines += block.count(b"\n")
                offset += len(block)
            if decoder is not None:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    raise SourceError(f"{uri}: not UTF-8 text (line {lines + 1}, byte offset {offset})") from None
    except FileNotFoundError:
        raise SourceError(f"{uri}: file not found (source.urls)") from None
    except IsADirectoryError:
        raise SourceError(f"{uri}: is a directory, expected one {fmt} file (source.urls)") from None
    if offset == 0:
        raise SourceError(f"{uri}: empty file")
    return sha.hexdigest()


def iter_rows(cfg: SourceConfig, uri: str, fmt: str) -> Iterator[pa.Table]:
    """The rows of one list file, streamed in batches (never the whole file at once):
    (row within the file, url?, caption?, keep.* ...), checked as they come (types, empty URLs)."""
    wanted = columns_read(cfg)
    headerless = fmt == "tsv_headerless"
    url_col = "url" if headerless else cfg.url_col
    caption_col = "caption" if headerless else cfg.caption_col
    start = 0
    for table in _stream(uri, fmt, wanted if not headerless else ["url", "caption"], cfg.keep_columns, caption_col):
        cols = {}
        for name in wanted if not headerless else [url_col, caption_col]:
            col = table.column(name).combine_chunks()
            if pa.types.is_null(col.type):  # a batch whose values are all null
                col = col.cast(pa.string())
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                raise SourceError(f"{uri}: column {name!r} has type {col.type}, expected string")
            cols[name] = col.cast(pa.string())
        out: dict[str, pa.Array] = {"row": pa.array(range(start, start + table.num_rows), pa.int64())}
        if cfg.modality != "text":
            _check_urls(uri, url_col, cols[url_col], start)
            out["url"] = cols[url_col]
        if cfg.modality != "image":
            out["caption"] = cols[caption_col].fill_null("")
        out.update(_kept_columns(uri, table, cfg.keep_columns))
        start += table.num_rows
        yield pa.table(out)
    if start == 0:
        raise SourceError(f"{uri}: no rows")


def _stream(
    uri: str, fmt: str, wanted: list[str], keep: list[str], caption_col: str, quoted: bool = False
) -> Iterator[pa.Table]:
    """The `wanted` + `keep` columns of a parquet/csv/tsv/txt file, streamed in batches (parquet and
    txt: BATCH_ROWS rows; csv/tsv: a block of bytes each). `quoted`: a tsv file's fields may be
    quoted as Python's csv module writes them (a csv file's always may)."""
    columns = list(dict.fromkeys([*wanted, *keep]))
    with storage.open_read(uri) as f:
        if fmt == "parquet":
            try:
                pf = pq.ParquetFile(f)
                for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                    yield pa.Table.from_batches([batch])
            except pa.ArrowException as exc:
                raise SourceError(f"{uri}: not a readable parquet file ({type(exc).__name__})") from None
        elif fmt == "txt":
            lines: list[str] = []
            for raw in f:  # split on LF only, as a .txt source's lines are; a CR before it is dropped
                lines.append(raw.decode("utf-8").removesuffix("\n").removesuffix("\r"))
                if len(lines) == BATCH_ROWS:
                    yield pa.table({caption_col: pa.array(lines, pa.string())})
                    lines = []
            if lines:
                yield pa.table({caption_col: pa.array(lines, pa.string())})
        else:
            headerless = fmt == "tsv_headerless"  # modality pair only (the config checks it)
            quoting = fmt == "csv" or quoted
            read = pacsv.ReadOptions(column_names=["caption", "url"] if headerless else None, block_size=_BLOCK)
            parse = pacsv.ParseOptions(delimiter="," if fmt == "csv" else "\t", quote_char='"' if quoting else False)
            convert = pacsv.ConvertOptions(
                column_types={col: pa.string() for col in columns}, include_columns=columns, strings_can_be_null=False
            )
            try:
                reader = pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)
                for batch in reader:
                    yield pa.Table.from_batches([batch])
            except pa.ArrowInvalid as exc:
                # Arrow's message names the row ("CSV parse error: Expected 2 columns, got 3: ..."), but
                # echoes the row's text; keep only the part before the quoted content.
                reason = str(exc).split(":", 2)
                raise SourceError(f"{uri}: cannot parse as {fmt}: {':'.join(reason[:2]).strip()}") from None


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
    sha = scan_file(uri, fmt)
    wanted = [FILE_COL] + ([cfg.caption_col] if cfg.modality == "pair" else [])
    hint = f"a folder source's caption table needs {FILE_COL!r}" + (
        " and source.caption_col" if cfg.modality == "pair" else ""
    )
    names = _column_names(uri, fmt, quoted=True)
    _require_columns(uri, names, wanted, hint)
    _require_columns(uri, names, cfg.keep_columns, _KEEP_HINT)
    batches = list(_stream(uri, fmt, wanted, cfg.keep_columns, cfg.caption_col, quoted=True))
    if not batches or sum(b.num_rows for b in batches) == 0:
        raise SourceError(f"{uri}: no rows")
    table = pa.concat_tables(batches)
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
    entry = {"uri": uri, "rows": table.num_rows, "sha256": sha}
    return Source(pa.table(out), uri, [entry])


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


def _check_urls(uri: str, url_col: str, urls: pa.Array, start: int = 0) -> None:
    bad = pc.or_kleene(pc.is_null(urls), pc.equal(pc.utf8_trim_whitespace(urls), ""))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        i = start + pc.index(bad, True).as_py()
        raise SourceError(f"{uri}: column {url_col!r}, row {i}: empty URL")
