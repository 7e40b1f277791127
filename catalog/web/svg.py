"""Inline SVG charts: the filter funnel, histograms, the version lineage graph and metrics over steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalog.reasons import REASONS
from catalog.web.html import h

_KEPT, _REJECTED, _REJECTED_ALT, _BAR = "#3f8f5a", "#d0644f", "#a8472f", "#4a6fa5"


def funnel_chart(
    funnel: dict[str, Any], width: int = 720, reason_href: Callable[[str], str | None] | None = None
) -> str:
    """One row per stage: a bar as long as the rows entering it, split into kept and, per
    reason, rejected, with the reasons named under it; a reason's bar part and name link to
    `reason_href(reason)` when that gives a URL (the reason's sampled rejects)."""
    rows = [(s["stage"], s["in"], s["kept"], s.get("rejected") or {}) for s in funnel.get("stages", [])] + [
        ("kept", funnel["kept"], funnel["kept"], {})
    ]
    total = max([funnel["in"], 1] + [r[1] for r in rows])
    label_w, bar_w = 130, width - 130 - 170
    parts, y = [], 4
    for name, n_in, kept, by_reason in rows:
        w_in = bar_w * n_in / total
        w_kept = bar_w * kept / total
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{h(name)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w_kept:.1f}" height="20" fill="{_KEPT}"><title>{h(name)}: {kept} kept</title></rect>'
        )
        reasons = sorted(((r, n) for r, n in by_reason.items() if n > 0), key=lambda kv: _reason_rank(kv[0]))
        x = label_w + w_kept
        for j, (reason, n) in enumerate(reasons):
            fill = _REJECTED if j % 2 == 0 else _REJECTED_ALT
            tip = f"{reason}: {n} rejected" + (" (see the sampled rows)" if reason_href and reason_href(reason) else "")
            rect = f'<rect x="{x:.1f}" y="{y}" width="{bar_w * n / total:.1f}" height="20" fill="{fill}" stroke="#fff" stroke-width="0.5"><title>{h(tip)}</title></rect>'
            parts.append(_maybe_link(rect, reason, reason_href, "funnel-reason"))
            x += bar_w * n / total
        rest = n_in - kept - sum(n for _, n in reasons)
        if rest > 0:  # rejects the stage's per-reason counts do not cover
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{bar_w * rest / total:.1f}" height="20" fill="{_REJECTED}"><title>{h(name)}: {rest} rejected</title></rect>'
            )
        parts.append(
            f'<text x="{label_w + w_in + 6:.1f}" y="{y + 15}" font-size="12" class="funnel-count">{n_in} in → {kept} kept</text>'
        )
        y += 38 if reasons else 28
        lx = label_w
        for reason, n in reasons:  # the reasons' names under the bar, wrapped to the chart's width
            label = f"{reason} {n}"
            if lx > label_w and lx + 6 * len(label) > width:
                lx, y = label_w, y + 14
            text = f'<text x="{lx}" y="{y - 6}" font-size="10" fill="{_REJECTED_ALT}">{h(label)}</text>'
            parts.append(_maybe_link(text, reason, reason_href, "funnel-reason-label"))
            lx += 6 * len(label) + 14
    height = y + 4
    return f'<svg class="funnel" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="filter funnel">{"".join(parts)}</svg>'


def _reason_rank(reason: str) -> int:
    return REASONS.index(reason) if reason in REASONS else len(REASONS)


def _maybe_link(inner: str, reason: str, href: Callable[[str], str | None] | None, css: str) -> str:
    """`inner` in an `<a>` to href(reason) when there is one, else in a `<g>`; both carry class and data-reason."""
    target = href(reason) if href else None
    data = f'class="{css}" data-reason="{h(reason)}"'
    return f'<a href="{h(target)}" {data}>{inner}</a>' if target else f"<g {data}>{inner}</g>"


def histogram_chart(name: str, hist: dict[str, Any], width: int = 320, height: int = 160) -> str:
    """Bars of a {"edges", "counts"} histogram, bin edges under the bars."""
    edges, counts = hist.get("edges", []), hist.get("counts", [])
    if not counts:
        return f'<svg width="{width}" height="30"><text x="0" y="20">{h(name)}: no data</text></svg>'
    top, bottom = 32, 28
    plot_h = height - top - bottom
    bar_w = (width - 10) / len(counts)
    peak = max(counts) or 1
    parts = [f'<text x="0" y="13" font-size="12" font-weight="600">{h(name)}</text>']
    for i, c in enumerate(counts):
        bh = plot_h * c / peak
        x = 5 + i * bar_w
        label = f"[{edges[i]}, {edges[i + 1]})" if i + 1 < len(edges) else str(i)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - bh:.1f}" width="{bar_w - 2:.1f}" height="{bh:.1f}" fill="{_BAR}"><title>{h(label)}: {c}</title></rect>'
        )
        if c:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - bh - 2:.1f}" font-size="9" text-anchor="middle">{c}</text>'
            )
    for i, e in enumerate(edges):
        if i % 2 == 0 or len(edges) <= 6:
            parts.append(
                f'<text x="{5 + i * bar_w:.1f}" y="{height - 12}" font-size="9" text-anchor="middle">{h(_short(e))}</text>'
            )
    return f'<svg class="hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{h(name)} histogram">{"".join(parts)}</svg>'


def lineage_graph(graph: dict[str, Any], href: Callable[[str], str | None]) -> str:
    """Versions as boxes in columns by generation, arrows parent → child; the focus is bold."""
    parents: dict[str, list[str]] = {}
    for p, c in graph["edges"]:
        parents.setdefault(c, []).append(p)
    depth: dict[str, int] = {}

    def depth_of(ref: str, trail: frozenset = frozenset()) -> int:
        if ref not in depth:
            ps = [p for p in parents.get(ref, []) if p not in trail]
            depth[ref] = 1 + max((depth_of(p, trail | {ref}) for p in ps), default=-1)
        return depth[ref]

    columns: dict[int, list[str]] = {}
    for ref in graph["nodes"]:
        columns.setdefault(depth_of(ref), []).append(ref)
    box_w, box_h, gap_x, gap_y = 120, 28, 50, 14
    pos = {
        ref: (10 + d * (box_w + gap_x), 10 + j * (box_h + gap_y))
        for d, refs in columns.items()
        for j, ref in enumerate(refs)
    }
    width = 20 + (max(columns) + 1) * (box_w + gap_x)
    height = 20 + max(len(v) for v in columns.values()) * (box_h + gap_y)
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>'
    ]
    for p, c in graph["edges"]:
        (x1, y1), (x2, y2) = pos[p], pos[c]
        parts.append(
            f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" stroke="#667" marker-end="url(#arrow)"/>'
        )
    for ref, (x, y) in pos.items():
        focus = ref == graph["focus"]
        box = (
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="5" fill="{"#1d2330" if focus else "#fff"}" stroke="#1d2330"/>'
            f'<text x="{x + box_w / 2}" y="{y + 18}" font-size="12" text-anchor="middle" fill="{"#fff" if focus else "#1d2330"}">{h(ref)}</text>'
        )
        target = href(ref)
        parts.append(f'<a href="{h(target)}">{box}</a>' if target else box)
    return f'<svg class="lineage" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="lineage">{"".join(parts)}</svg>'


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


_SERIES = ["#4a6fa5", "#d0644f", "#3f8f5a", "#9a6fb0", "#c89b2c", "#2c9fb0", "#b0506f", "#667"]


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    chance: dict[str, float] | None = None,
    width: int = 560,
    height: int = 260,
) -> str:
    """Metrics over steps: one polyline (a circle per point) per series, x and y axes with
    ticks, a legend under the plot and each series' chance level as a dashed line of its colour."""
    chance = {k: v for k, v in (chance or {}).items() if k in series and v is not None}
    points = [(x, y) for pts in series.values() for x, y in pts if y is not None]
    if not points:
        return f'<svg width="{width}" height="30"><text x="0" y="20">{h(title)}: no data</text></svg>'
    xs = [x for x, _ in points]
    ys = [y for _, y in points] + list(chance.values())
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(0.0, min(ys)), max(ys)
    if y_lo >= 0 and y_hi <= 1:
        y_hi = 1.0
    if y_hi == y_lo:
        y_hi = y_lo + 1.0
    left, right, top = 52, 16, 26
    plot_w, plot_h = width - left - right, height - top - 36
    total_h = height + 12 + 16 * len(series)

    def sx(x: float) -> float:
        return left + (plot_w / 2 if x_hi == x_lo else plot_w * (x - x_lo) / (x_hi - x_lo))

    def sy(y: float) -> float:
        return top + plot_h - plot_h * (y - y_lo) / (y_hi - y_lo)

    parts = [
        f'<text x="0" y="14" font-size="12" font-weight="600">{h(title)}</text>',
        f'<line class="axis x-axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#1d2330"/>',
        f'<line class="axis y-axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#1d2330"/>',
    ]
    for i in range(5):
        y = y_lo + (y_hi - y_lo) * i / 4
        parts.append(
            f'<line x1="{left - 4}" y1="{sy(y):.1f}" x2="{left + plot_w}" y2="{sy(y):.1f}" stroke="#dde1e7"/>'
            f'<text x="{left - 6}" y="{sy(y) + 3:.1f}" font-size="9" text-anchor="end">{h(_short(round(y, 4)))}</text>'
        )
    for x in sorted(set(xs)) if len(set(xs)) <= 8 else [x_lo + (x_hi - x_lo) * i / 6 for i in range(7)]:
        parts.append(
            f'<line x1="{sx(x):.1f}" y1="{top + plot_h}" x2="{sx(x):.1f}" y2="{top + plot_h + 4}" stroke="#1d2330"/>'
            f'<text class="x-tick" x="{sx(x):.1f}" y="{top + plot_h + 15}" font-size="9" text-anchor="middle">{h(_short(round(x)))}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 28}" font-size="10" text-anchor="middle">step</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        color = _SERIES[i % len(_SERIES)]
        pts = sorted((x, y) for x, y in pts if y is not None)
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series" data-metric="{h(name)}" points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        parts.extend(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"><title>{h(name)} at step {h(_short(x))}: {h(_short(y))}</title></circle>'
            for x, y in pts
        )
        if name in chance:
            c = sy(chance[name])
            parts.append(
                f'<line class="chance" data-metric="{h(name)}" x1="{left}" y1="{c:.1f}" x2="{left + plot_w}" y2="{c:.1f}" stroke="{color}" stroke-dasharray="5,4"><title>{h(name)} chance: {h(_short(chance[name]))}</title></line>'
            )
        ly = height + 10 + 16 * i
        dash = ' stroke-dasharray="5,4"' if name in chance else ""
        parts.append(
            f'<g class="legend"><line x1="{left}" y1="{ly - 4}" x2="{left + 18}" y2="{ly - 4}" stroke="{color}" stroke-width="2"/>'
            f'<text x="{left + 24}" y="{ly}" font-size="11">{h(name)}</text>'
            + (
                f'<line x1="{left + 300}" y1="{ly - 4}" x2="{left + 318}" y2="{ly - 4}" stroke="{color}"{dash}/>'
                f'<text x="{left + 324}" y="{ly}" font-size="11">chance {h(_short(chance[name]))}</text>'
                if name in chance
                else ""
            )
            + "</g>"
        )
    return f'<svg class="metrics" width="{width}" height="{total_h}" viewBox="0 0 {width} {total_h}" role="img" aria-label="{h(title)}">{"".join(parts)}</svg>'
