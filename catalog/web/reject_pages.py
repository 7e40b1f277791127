"""Pages of a version's rejects sample (catalog.rejects): the reasons and one reason's gallery.

`/d/{dataset}/{version}/rejects` lists the reasons (check order) with the rows each
rejected and how many the sample holds; `/d/{dataset}/{version}/rejects/{reason}` shows
the sampled rows as cards: the thumbnail (served by the app's `.../{key}.jpg` route) or
why there is none, the scrubbed caption, the scores the reason's check reads and then the
other recorded scores; a duplicate shows its kept representative side by side. Every
value is escaped through catalog.web.html.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from catalog import rejects
from catalog.manifest import modality_of
from catalog.scores import REJECTS_SAMPLE_FILE, SCORES_OF
from catalog.store import Catalog
from catalog.web.html import h, link, page, table
from catalog.web.pages import pager, rejects_href, version_href

PER_PAGE = 48


def _crumbs(dataset: str, version: int, reason: str | None = None) -> list[tuple[str, str]]:
    crumbs = [(version_href(dataset, version), f"{dataset}@{version}"), (rejects_href(dataset, version), "rejects")]
    return crumbs + ([(rejects_href(dataset, version, reason), reason)] if reason else [])


def predates_page(dataset: str, version: int, reason: str | None = None) -> str:
    """The page of a version without rejects_sample.parquet."""
    body = (
        f"<h1>{h(dataset)}@{h(version)} rejects</h1>"
        f'<p id="no-sample">{h(dataset)}@{h(version)} predates reject samples: it was built before rejects samples '
        f"were recorded (no {h(REJECTS_SAMPLE_FILE)}). Rebuild it to browse its rejected rows; its funnel and "
        f"reasons are on the {link(version_href(dataset, version), 'version page')}.</p>"
    )
    return page(f"{dataset}@{version} rejects", body, _crumbs(dataset, version, reason))


def _cap_note(m: dict[str, Any]) -> str:
    return (
        f'<p class="muted">From {h(REJECTS_SAMPLE_FILE)}: up to {h(rejects.sample_cap(m))} rejected rows per reason '
        "(the build's rejects.sample_per_reason), with their scores and captions after name scrubbing.</p>"
    )


def reasons_page(catalog: Catalog, dataset: str, version: int) -> str:
    """The reasons table of a version's rejects sample (NoRejectsSample when there is none)."""
    m = catalog.index.manifest(dataset, version)
    entries = rejects.summary(m, rejects.sampled_counts(catalog.root, dataset, version, required=True) or {})
    rows = [
        [
            link(rejects_href(dataset, version, e["reason"]), e["reason"]),
            e["stage"],
            e["rejected"],
            f"{100 * e['share']:.1f}%",
            e["sampled"],
        ]
        for e in entries
    ]
    body = [
        f"<h1>{h(dataset)}@{h(version)} rejects</h1>",
        _cap_note(m),
        table(["reason", "stage", "rejected", "share of input", "sampled"], rows, raw_columns=(0,))
        if rows
        else "<p>No row was rejected.</p>",
    ]
    return page(f"{dataset}@{version} rejects", "".join(body), _crumbs(dataset, version))


def _thumb_href(dataset: str, version: int, reason: str, key: str, duplicate: bool = False) -> str:
    base = f"{rejects_href(dataset, version, reason)}/{quote(key, safe='')}"
    return base + ("/duplicate.jpg" if duplicate else ".jpg")


def _figure(src: str | None, label: str, why: str, css: str) -> str:
    if src:
        return f'<figure class="{css}"><img class="thumb" src="{h(src)}" alt="{h(label)}"><figcaption>{h(label)}</figcaption></figure>'
    return (
        f'<figure class="{css} none"><div class="no-thumb">{h(why)}</div><figcaption>{h(label)}</figcaption></figure>'
    )


def _card(dataset: str, version: int, reason: str, row: dict[str, Any], images: bool) -> str:
    key = row["key"]
    pictures = ""
    if images:
        own = _thumb_href(dataset, version, reason, key) if row.get("thumbnail") else None
        pictures = _figure(own, f"rejected {key}", rejects.why_no_thumbnail(row), "thumb")
        rep = row.get("duplicate_of")
        if rep:
            src = _thumb_href(dataset, version, reason, key, duplicate=True) if row.get("duplicate_thumbnail") else None
            why = "no thumbnail: the representative was kept by an earlier version"
            pictures += _figure(src, f"kept representative {rep}", why, "thumb rep")
        pictures = f'<div class="pair">{pictures}</div>'
    caption = row.get("caption")
    caption_html = (
        f'<div class="caption">{h(caption)}</div>'
        if caption is not None
        else '<div class="caption muted">(no caption)</div>'
    )
    primary, others = rejects.score_items(row, reason)
    scores = "".join(f"<tr><th>{h(n)}</th><td>{h(v)}</td></tr>" for n, v in primary)
    rest = " · ".join(f"{h(n)} {h(v)}" for n, v in others)
    return (
        f'<div class="card reject" data-key="{h(key)}">{pictures}{caption_html}'
        f'<table class="scores">{scores}</table>'
        f'<div class="other-scores">{rest}</div>'
        f'<div class="muted">{h(key)} · {h(row.get("url") or "-")}</div></div>'
    )


def reason_page(catalog: Catalog, dataset: str, version: int, reason: str, page_no: int, per_page: int) -> str:
    """One reason's sampled rows as a gallery (ReasonNotFound / NoRejectsSample as the app renders them)."""
    m = catalog.index.manifest(dataset, version)
    rejects.check_reason(m, reason)
    counts = rejects.sampled_counts(catalog.root, dataset, version, required=True) or {}
    sampled, rejected = counts.get(reason, 0), m["funnel"]["rejected"].get(reason, 0)
    pages = max(1, -(-sampled // per_page))
    page_no = min(max(page_no, 0), pages - 1)
    rows = rejects.reason_rows(catalog.root, m, reason, limit=per_page, start=page_no * per_page)
    entries = rejects.summary(m, counts)
    stage = next((e["stage"] for e in entries if e["reason"] == reason), "?")
    others = " · ".join(
        link(rejects_href(dataset, version, e["reason"]), e["reason"])
        if e["reason"] != reason
        else f"<b>{h(reason)}</b>"
        for e in entries
    )
    base = rejects_href(dataset, version, reason)
    nav = [pager(base, page_no, pages, per_page)]
    images = modality_of(m) != "text"
    share = f"{100 * rejected / max(m['funnel']['in'], 1):.1f}%"
    cards = "".join(_card(dataset, version, reason, r, images) for r in rows)
    body = [
        f"<h1>{h(dataset)}@{h(version)} rejects: {h(reason)}</h1>",
        f'<p><span id="rejected">{h(rejected)}</span> rows rejected at the {h(stage)} stage '
        f"({h(share)} of the input); "
        f'<span id="sampled">{h(sampled)}</span> in the sample. '
        f"Scores its check reads: {h(', '.join(SCORES_OF.get(reason, ())) or '-')}.</p>",
        _cap_note(m),
        f'<p class="reasons">{others}</p>',
        "".join(nav),
        f'<div class="gallery rejects">{cards}</div>' if rows else "<p>No sampled rows for this reason.</p>",
        "".join(nav) if pages > 1 else "",
    ]
    return page(f"{dataset}@{version} rejects: {reason}", "".join(body), _crumbs(dataset, version, reason))
