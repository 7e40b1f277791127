"""Plain-text tables and bars for the catalog CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def bar(value: float, maximum: float, width: int = 30) -> str:
    return "#" * (round(width * value / maximum) if maximum else 0)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


VERSION_COLUMNS = ["version", "modality", "created", "samples", "in", "kept", "shards", "size", "parents"]


def version_cells(row: dict[str, Any]) -> list[Any]:
    """A version's cells under VERSION_COLUMNS (for `list` and the web index alike), from a
    `CatalogIndex.versions` row."""
    return [
        f"{row['dataset']}@{row['version']}",
        row["modality"],
        row["created"],
        row["samples"],
        row["n_in"],
        row["kept"],
        row["n_shards"],
        human_bytes(row["bytes"]),
        ", ".join(row["parents"]) or "-",
    ]
