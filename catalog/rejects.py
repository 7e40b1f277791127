"""A version's rejects you can browse: `rejects_sample.parquet` (catalog.scores) read back.

The build keeps up to `rejects.sample_per_reason` rejected rows per reason (default 200)
with their scores, their caption after name scrubbing and thumbnails. This module reads
that file through `catalog.parquet` (so s3:// roots work), counts it per reason against the
manifest funnel (`summary`), returns one reason's rows as dicts (`reason_rows`) and formats
scores for people (`score_items`, `format_value`, `why_no_thumbnail`); the CLI
(`catalog.commands.rejects`) and the web pages (`catalog.web.reject_pages`) share it. A
version built before reject samples existed, an unknown reason or a reason the version
never rejected is a one-line `UserError` naming the file or the version's reasons.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import storage
from catalog.errors import NotFound, UserError
from catalog.parquet import read_parquet
from catalog.reasons import REASONS, STAGE_OF
from catalog.scores import DEFAULT_SAMPLE_PER_REASON, REJECTS_SAMPLE_FILE, SCHEMA, SCORES_OF
from catalog.versions import version_uri

_NOT_SCORES = ("row", "key", "stage", "reason")
_CACHED = 4  # full sample tables (thumbnails included) kept in memory for the web app
_cache: OrderedDict[str, tuple[str, pa.Table]] = OrderedDict()
_lock = threading.Lock()


class NoRejectsSample(UserError, LookupError):
    """The version has no rejects_sample.parquet (built before reject samples were recorded)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ReasonNotFound(NotFound):
    """A reason that is not in the vocabulary, or that this version rejected no row for."""


def sample_uri(root: str, dataset: str, version: int) -> str:
    return storage.join(version_uri(root, dataset, version), REJECTS_SAMPLE_FILE)


def _fingerprint(uri: str, dataset: str, version: int) -> str:
    fs, path = storage.filesystem(uri)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise NoRejectsSample(
            f"{dataset}@{version}: no {REJECTS_SAMPLE_FILE} at {uri}: the version was built before "
            "rejects samples were recorded; rebuild it"
        ) from None
    return f"{info.get('ETag') or info.get('mtime') or info.get('LastModified')}:{info.get('size')}"


def has_sample(root: str, dataset: str, version: int) -> bool:
    return storage.exists(sample_uri(root, dataset, version))


def read_sample(root: str, dataset: str, version: int, columns: list[str] | None = None) -> pa.Table:
    """The sample table (the whole of it is cached by the file's fingerprint; `columns` reads only those)."""
    uri = sample_uri(root, dataset, version)
    tag = _fingerprint(uri, dataset, version)
    if columns is None:
        with _lock:
            hit = _cache.get(uri)
            if hit and hit[0] == tag:
                _cache.move_to_end(uri)
                return hit[1]
    try:
        table = read_parquet(uri, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{uri}: not a readable rejects sample ({exc})") from None
    missing = [c for c in ("key", "reason") if c not in table.column_names]
    if missing:
        raise UserError(f"{uri}: no column {', '.join(missing)}; rebuild {dataset}@{version}")
    if columns is None:
        with _lock:
            _cache[uri] = (tag, table)
            while len(_cache) > _CACHED:
                _cache.popitem(last=False)
    return table


def sample_cap(manifest: dict[str, Any]) -> int:
    """The build's `rejects.sample_per_reason` (the default when its config does not say)."""
    rejects = (manifest.get("config") or {}).get("rejects") or {}
    return int(rejects.get("sample_per_reason", DEFAULT_SAMPLE_PER_REASON))


def sampled_counts(root: str, dataset: str, version: int, required: bool = False) -> dict[str, int] | None:
    """reason -> rows in the sample; None when the version has no sample file (NoRejectsSample if `required`)."""
    try:
        table = read_sample(root, dataset, version, columns=["key", "reason"])
    except NoRejectsSample:
        if required:
            raise
        return None
    return dict(Counter(table.column("reason").to_pylist()))


def summary(manifest: dict[str, Any], sampled: dict[str, int]) -> list[dict[str, Any]]:
    """One entry per reason the version rejected or sampled, in check order:
    `reason`, `stage`, `rejected` (manifest funnel), `share` (of the input), `sampled`."""
    funnel = manifest["funnel"]
    rejected = funnel.get("rejected") or {}
    names = [r for r in REASONS if rejected.get(r) or sampled.get(r)]
    names += sorted(r for r in {*rejected, *sampled} if r not in STAGE_OF and (rejected.get(r) or sampled.get(r)))
    total = max(int(funnel.get("in") or 0), 1)
    return [
        {
            "reason": r,
            "stage": STAGE_OF.get(r, "?"),
            "rejected": int(rejected.get(r, 0)),
            "share": rejected.get(r, 0) / total,
            "sampled": int(sampled.get(r, 0)),
        }
        for r in names
    ]


def check_reason(manifest: dict[str, Any], reason: str) -> None:
    """Raise ReasonNotFound unless the version rejected rows for `reason` (the message lists its reasons)."""
    ref = f"{manifest['dataset']}@{manifest['version']}"
    rejected = {r: n for r, n in (manifest["funnel"].get("rejected") or {}).items() if n}
    have = ", ".join(f"{r} ({n})" for r, n in sorted(rejected.items(), key=lambda kv: _rank(kv[0]))) or "none"
    if reason not in STAGE_OF:
        raise ReasonNotFound(f"{ref}: unknown reason {reason!r}; this version's reasons: {have}")
    if reason not in rejected:
        raise ReasonNotFound(f"{ref}: no row was rejected as {reason!r}; this version's reasons: {have}")


def _rank(reason: str) -> int:
    return REASONS.index(reason) if reason in REASONS else len(REASONS)


def reason_rows(
    root: str, manifest: dict[str, Any], reason: str, limit: int | None = None, start: int = 0
) -> list[dict[str, Any]]:
    """The sampled rows of `reason` (file order), `start`..`start+limit`, as dicts of SAMPLE_SCHEMA columns."""
    check_reason(manifest, reason)
    table = read_sample(root, manifest["dataset"], manifest["version"])
    picked = table.filter(pc.equal(table.column("reason"), reason))
    stop = picked.num_rows if limit is None else min(picked.num_rows, start + limit)
    return picked.slice(start, max(stop - start, 0)).to_pylist()


def thumbnail(root: str, dataset: str, version: int, reason: str, key: str, column: str = "thumbnail") -> bytes:
    """The JPEG bytes of a sampled row's `thumbnail` or `duplicate_thumbnail` (LookupError when none)."""
    table = read_sample(root, dataset, version)
    if column not in table.column_names:
        raise LookupError(f"{dataset}@{version}: the rejects sample has no {column} column")
    hit = table.filter(pc.and_(pc.equal(table.column("reason"), reason), pc.equal(table.column("key"), key)))
    data = hit.column(column)[0].as_py() if hit.num_rows else None
    if not data:
        raise LookupError(f"{dataset}@{version}: no {column} for {reason} sample {key!r}")
    return data


def format_value(value: Any) -> str:
    """A score for people: floats to 3 decimals, lists joined, booleans yes/no, null '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "(none)"
    return str(value)


def score_items(row: dict[str, Any], reason: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the scores `reason`'s check reads, null shown as '-'), (every other non-null score), formatted."""
    first = SCORES_OF.get(reason, ())
    primary = [(c, format_value(row.get(c))) for c in first]
    others = [
        (c, format_value(row[c]))
        for c in SCHEMA.names
        if c not in first and c not in _NOT_SCORES and row.get(c) is not None
    ]
    return primary, others


def why_no_thumbnail(row: dict[str, Any]) -> str:
    """Why a sampled row has no thumbnail, in words."""
    if row.get("stage") == "text":
        return "not downloaded: rejected at the text stage"
    status = row.get("download_status")
    if status and status != "success":
        error = row.get("download_error")
        return f"not downloaded: {status}" + (f" ({error})" if error else "")
    if row.get("decoded") is False:
        return "no thumbnail: the downloaded bytes do not decode as an image"
    if status is None and row.get("stage") in (None, "download"):
        return "not downloaded"
    return "no thumbnail recorded"
