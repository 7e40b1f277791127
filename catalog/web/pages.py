"""Server-rendered pages of the catalog web app (all values escaped via catalog.web.html)."""

from __future__ import annotations

import json
from urllib.parse import quote

from catalog import rejects
from catalog.lineage import lineage
from catalog.manifest import modality_of
from catalog.models import runs_for_dataset
from catalog.reasons import REASONS
from catalog.store import Catalog, SampleRef
from catalog.tables import VERSION_COLUMNS, human_bytes, version_cells
from catalog.web.html import h, link, page, table
from catalog.web.svg import funnel_chart, histogram_chart, lineage_graph

SHARD_ROWS = 200
_RANK = {r: i for i, r in enumerate(REASONS)}


def version_href(dataset: str, version: int) -> str:
    return f"/d/{quote(dataset, safe='')}/{version}"


def rejects_href(dataset: str, version: int, reason: str | None = None) -> str:
    """The rejects page of a version, or of one reason (catalog.web.reject_pages)."""
    return f"{version_href(dataset, version)}/rejects" + (f"/{quote(reason, safe='')}" if reason else "")


def run_href(run: str) -> str:
    return f"/models/{quote(run, safe='')}"


def dataset_list(catalog: Catalog) -> str:
    rows = catalog.index.versions()
    body = [
        f"<h1>Datasets under {h(catalog.root)}</h1>",
        f"<p>{link('/models', 'Models')}: training runs and evaluations recorded under this root.</p>",
    ]
    if not rows:
        body.append('<p class="muted">No complete versions yet.</p>')
    else:
        body.append(
            table(
                [*VERSION_COLUMNS, ""],
                [
                    [
                        link(version_href(r["dataset"], r["version"]), f"{r['dataset']}@{r['version']}"),
                        *version_cells(r)[1:],
                        link(version_href(r["dataset"], r["version"]) + "/samples", "samples"),
                    ]
                    for r in rows
                ],
                raw_columns=(0, len(VERSION_COLUMNS)),
            )
        )
    for p in catalog.index.problems():
        body.append(f'<p class="muted">skipped {h(p["dataset"])}@{h(p["version"])}: {h(p["error"])}</p>')
    return page("lipforge catalog", "".join(body))


def _lineage_href(catalog: Catalog):
    known = {f"{r['dataset']}@{r['version']}" for r in catalog.index.versions()}

    def href(ref: str) -> str | None:
        if ref not in known:
            return None
        name, _, ver = ref.partition("@")
        return version_href(name, int(ver))

    return href


def version_page(catalog: Catalog, dataset: str, version: int) -> str:
    m = catalog.index.manifest(dataset, version)
    funnel, schema, stats = m["funnel"], m["schema"], m["stats"]
    base = version_href(dataset, version)
    reasons = sorted(funnel["rejected"].items(), key=lambda kv: _RANK.get(kv[0], len(_RANK)))
    histograms = [
        histogram_chart(name, hist)
        for name, hist in sorted(stats.items())
        if isinstance(hist, dict) and "counts" in hist
    ]
    scalars = [
        (name, f"{v:.3f}" if isinstance(v, float) else v)
        for name, v in sorted(stats.items())
        if not (isinstance(v, dict) and "counts" in v)
    ]
    shards = m["shards"][:SHARD_ROWS]
    more = len(m["shards"]) - len(shards)
    sampled = rejects.sampled_counts(catalog.root, dataset, version)  # None: built before reject samples

    def reason_href(reason: str) -> str | None:
        return rejects_href(dataset, version, reason) if sampled is not None else None

    browse_rejects = (
        f" · {link(rejects_href(dataset, version), 'Browse rejects')}"
        if sampled is not None
        else ' · <span class="muted" id="no-rejects-sample">no rejects sample (built before reject samples)</span>'
    )
    body = [
        f"<h1>{h(dataset)}@{h(version)}</h1>",
        f'<p>modality <span id="modality">{h(modality_of(m))}</span>; '
        f"{h(m['samples'])} samples in {h(len(m['shards']))} shards ({h(human_bytes(sum(s['bytes'] for s in m['shards'])))}); "
        f"created {h(m['created'])}; code {h(m['code_version'])}. "
        f"{link(base + '/samples', 'Browse samples')}{browse_rejects} · {link('/files/' + quote(dataset, safe='') + f'/v{version}/manifest.json', 'manifest.json')}</p>",
        f'<h2>Filter funnel: <span id="funnel-in">{h(funnel["in"])}</span> in → <span id="funnel-kept">{h(funnel["kept"])}</span> kept</h2>',
        f'<div class="card">{funnel_chart(funnel, reason_href=reason_href)}</div>',
        "<h2>Rejected by reason</h2>",
        _reasons_table(reasons, funnel["in"], sampled, reason_href) if reasons else "<p>none</p>",
        "<h2>Stages</h2>",
        table(
            ["stage", "in", "kept", "rejected"],
            [
                [s["stage"], s["in"], s["kept"], ", ".join(f"{r}={n}" for r, n in s["rejected"].items()) or "-"]
                for s in funnel["stages"]
            ],
        ),
        "<h2>Statistics</h2>",
        f'<div class="charts">{"".join(f"<div class=card>{c}</div>" for c in histograms)}</div>',
        table(["statistic", "value"], scalars) if scalars else "",
        "<h2>Schema</h2>",
        table(
            ["members", "image views", "text views"],
            [
                [
                    ", ".join(schema.get("keys", [])),
                    ", ".join(schema.get("views", {}).get("image", [])) or "-",
                    ", ".join(schema.get("views", {}).get("text", [])) or "-",
                ]
            ],
        ),
        "<h2>Runs</h2>",
        _runs_section(runs_for_dataset(catalog.root, f"{dataset}@{version}")),
        "<h2>Lineage</h2>",
        f'<div class="card">{lineage_graph(lineage(catalog.index, dataset, version), _lineage_href(catalog))}</div>',
        "<h2>Sources</h2>",
        table(["uri", "rows", "sha256"], [[s.get("uri"), s.get("rows"), s.get("sha256")] for s in m["sources"]]),
        f"<h2>Shards ({h(len(m['shards']))})</h2>",
        table(
            ["path", "samples", "bytes", "sha256"], [[s["path"], s["samples"], s["bytes"], s["sha256"]] for s in shards]
        ),
        f'<p class="muted">… and {h(more)} more shards (see manifest.json)</p>' if more > 0 else "",
        "<h2>Config</h2>",
        f"<pre>{h(json.dumps(m['config'], indent=2, sort_keys=True))}</pre>",
    ]
    return page(f"{dataset}@{version}", "".join(body), [(base, f"{dataset}@{version}")])


def _reasons_table(reasons: list, n_in: int, sampled: dict[str, int] | None, href) -> str:
    """Rows and share per reason; with a rejects sample, each reason links to its sampled rows."""
    headers = ["reason", "rows", "share of input"] + (["sampled"] if sampled is not None else [])
    rows = [
        [link(href(r), r) if href(r) else h(r), n, f"{100 * n / max(n_in, 1):.1f}%"]
        + ([sampled.get(r, 0)] if sampled is not None else [])
        for r, n in reasons
    ]
    return f'<div id="reasons">{table(headers, rows, raw_columns=(0,))}</div>'


def _runs_section(runs: dict) -> str:
    """Links to the runs trained and evaluated on a version (catalog.models)."""
    out = []
    for label, key in (("trained on it", "trained"), ("evaluated on it", "evaluated")):
        items = "".join(
            f'<li>{link(run_href(s["run"]), s["run"])} <span class="muted">{h(s.get("status") or "-")}</span></li>'
            for s in runs[key]
        )
        out.append(f'<div id="runs-{key}"><b>{h(label)}</b>' + (f"<ul>{items}</ul>" if items else ": none") + "</div>")
    return f'<div class="card runs">{"".join(out)}</div>'


def _member_href(ref: SampleRef, ext: str) -> str:
    return f"{version_href(ref.dataset, ref.version)}/sample/{ref.position}/{quote(ext, safe='')}"


def _is_image(ext: str) -> bool:
    return ext.rsplit(".", 1)[-1] in ("jpg", "jpeg", "png", "webp")


def _card(catalog: Catalog, ref: SampleRef) -> str:
    rec = catalog.describe(ref)
    main = "jpg" if "jpg" in ref.members else next((e for e in ref.members if _is_image(e)), None)
    views = [e for e in ref.members if _is_image(e) and e != main]
    detail = f"{version_href(ref.dataset, ref.version)}/sample/{ref.position}"
    img = (
        f'<a href="{h(detail)}"><img class="main" src="{h(_member_href(ref, main))}" alt="{h(ref.key)}"></a>'
        if main
        else ""
    )
    view_imgs = "".join(
        f'<img class="view" src="{h(_member_href(ref, e))}" title="{h(e)}" alt="{h(e)}">' for e in views
    )
    texts = "".join(f'<div class="tv"><b>{h(e)}</b> {h(t)}</div>' for e, t in rec["text_views"].items())
    return (
        f'<div class="card sample" data-key="{h(ref.key)}">{img}<div class="caption">{h(rec["caption"])}</div>'
        f'<div class="views">{view_imgs}</div>{texts}<div class="muted">#{h(ref.position)} {link(detail, ref.key)}</div></div>'
    )


def pager(href: str, page_no: int, pages: int, per_page: int, note: str = "") -> str:
    """The previous / page N of M / next bar of a paged gallery at `href`."""
    nav = ['<div class="pager">']
    if page_no > 0:
        nav.append(link(f"{href}?page={page_no - 1}&per_page={per_page}", "← previous"))
    nav.append(f"<span>page {h(page_no + 1)} of {h(pages)}{h(note)}</span>")
    if page_no + 1 < pages:
        nav.append(link(f"{href}?page={page_no + 1}&per_page={per_page}", "next →"))
    nav.append("</div>")
    return "".join(nav)


def gallery_page(catalog: Catalog, dataset: str, version: int, page_no: int, per_page: int) -> str:
    total = catalog.index.manifest_samples(dataset, version)
    pages = max(1, -(-total // per_page))
    page_no = min(max(page_no, 0), pages - 1)
    refs = catalog.page(dataset, version, page_no * per_page, per_page)
    base = version_href(dataset, version)
    nav = [pager(f"{base}/samples", page_no, pages, per_page, f" ({total} samples)")]
    body = [
        f"<h1>{h(dataset)}@{h(version)} samples</h1>",
        "".join(nav),
        f'<div class="gallery">{"".join(_card(catalog, r) for r in refs)}</div>',
        "".join(nav),
    ]
    return page(
        f"{dataset}@{version} samples", "".join(body), [(base, f"{dataset}@{version}"), (f"{base}/samples", "samples")]
    )


def sample_page(catalog: Catalog, ref: SampleRef) -> str:
    rec = catalog.describe(ref)
    base = version_href(ref.dataset, ref.version)
    images = "".join(
        f'<div class="card"><img src="{h(_member_href(ref, e))}" alt="{h(e)}"><div class="muted">{h(e)}: {h(loc["shard"])} :: {h(loc["member"])}</div></div>'
        for e, loc in rec["images"].items()
    )
    body = [
        f"<h1>{h(ref.key)}</h1>",
        f'<p class="caption">{h(rec["caption"])}</p>',
        table(["text view", "text"], list(rec["text_views"].items())) if rec["text_views"] else "",
        f'<h2>Images</h2><div class="charts">{images}</div>',
        "<h2>json</h2>",
        f"<pre>{h(json.dumps(rec['json'], indent=2, sort_keys=True, ensure_ascii=False))}</pre>",
        f'<p class="muted">shard {h(rec["shard"])}, position {h(ref.position)}</p>',
    ]
    return page(
        ref.key,
        "".join(body),
        [
            (base, f"{ref.dataset}@{ref.version}"),
            (f"{base}/samples", "samples"),
            (f"{base}/sample/{ref.position}", ref.key),
        ],
    )


def error_page(status: int, message: str) -> str:
    return page(f"{status}", f"<h1>{h(status)}</h1><p>{h(message)}</p>")
