"""HTML building blocks. Every interpolated value goes through `h` (escaping), no exceptions."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:16px 24px;max-width:1400px}h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde1e7;padding:4px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#667}
.charts{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:8px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.gallery img.main{width:100%;height:220px;object-fit:cover;border-radius:4px}
.views img{height:56px;margin:2px;border:1px solid #ccd}.caption{font-weight:600;margin:6px 0}
.tv{font-size:12px;color:#445}.tv b{color:#223}pre{background:#fff;border:1px solid #dde1e7;padding:8px;overflow:auto}
.pager a,.pager span{margin-right:10px}.card.chart{display:inline-block}figure.card{margin:0}
.gallery.rejects{grid-template-columns:repeat(auto-fill,minmax(360px,1fr))}.pair{display:flex;gap:8px}
.pair figure{margin:0;flex:1;min-width:0}.pair figcaption{font-size:11px;color:#667;word-break:break-all}
img.thumb{max-width:100%;max-height:160px;display:block;border-radius:4px}
.no-thumb{height:100px;display:flex;align-items:center;justify-content:center;text-align:center;padding:6px;
background:#eceef2;color:#556;border:1px dashed #b8bec9;border-radius:4px;font-size:12px}
table.scores{font-size:12px;margin:4px 0;width:100%;table-layout:fixed}
table.scores th{font-weight:600;background:#f6f7f9;width:38%}table.scores td{word-break:break-all}
.reject .muted{font-size:12px;word-break:break-all}
svg.funnel a text{text-decoration:underline}svg.funnel a:hover rect{opacity:.8}
.other-scores{font-size:11px;color:#556;margin:4px 0;word-break:break-word}
"""


def h(value: Any) -> str:
    """HTML-escape any value (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A full page; `body` must already be escaped HTML. crumbs are (href, label) pairs."""
    nav = " / ".join(f'<a href="{h(href)}">{h(label)}</a>' for href, label in [("/", "lipforge catalog"), *crumbs])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{h(title)}</title>'
        f"<style>{_CSS}</style></head><body><header>{nav}</header><main>{body}</main></body></html>"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], raw_columns: Sequence[int] = ()) -> str:
    """A table; cells are escaped unless their column is in raw_columns (pre-built HTML)."""
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = ' class="n"' if isinstance(cell, (int, float)) and not isinstance(cell, bool) else ""
            cells.append(f"<td{css}>{cell if i in raw_columns else h(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def link(href: str, label: Any) -> str:
    return f'<a href="{h(href)}">{h(label)}</a>'
