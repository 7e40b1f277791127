"""Pages of the recorded training runs (catalog.models): the runs table and one run's page.

Every value is escaped through catalog.web.html; evaluation files are linked by the paths
recorded in evals.jsonl and served by the app's `/models/{run}/files/...` route.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from catalog.models import headline, list_runs, load_run, roles_of
from catalog.store import Catalog
from catalog.web.html import h, link, page, table
from catalog.web.pages import run_href, version_href
from catalog.web.svg import line_chart

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def _known(catalog: Catalog) -> set[str]:
    return {f"{r['dataset']}@{r['version']}" for r in catalog.index.versions()}


def dataset_link(ref: str, known: set[str]) -> str:
    """A link to the version page of `NAME@N` when it is under the root, else the plain (escaped) ref."""
    if ref not in known:
        return f'<span class="muted" title="not under this root">{h(ref)}</span>'
    name, _, ver = ref.partition("@")
    return link(version_href(name, int(ver)), ref)


def file_href(run: str, relpath: str) -> str:
    return f"{run_href(run)}/files/{quote(relpath, safe='/')}"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _step(s: dict[str, Any]) -> str:
    return f"{_num(s.get('step'))}/{_num(s.get('steps'))}"


def models_list(catalog: Catalog) -> str:
    runs = list_runs(catalog.root)
    known = _known(catalog)
    body = [f"<h1>Models under {h(catalog.root)}</h1>"]
    if not runs:
        body.append('<p class="muted">No runs recorded yet.</p>')
    else:
        rows = []
        for s in runs:
            latest = []
            for name, last in sorted(s["latest"].items()):
                shown = ", ".join(f"{m} {_num(last['metrics'][m])}" for m in headline(last["metrics"]))
                latest.append(f"<div>{h(name)} step {h(last['step'])}: {h(shown or '-')}</div>")
            rows.append(
                [
                    link(run_href(s["run"]), s["run"]),
                    h(s["status"] or "-"),
                    h(_step(s)),
                    ", ".join(dataset_link(r, known) for r in s["trained"]) or "-",
                    ", ".join(dataset_link(r, known) for r in s["evaluated"]) or "-",
                    "".join(latest) or "-",
                    h(s["updated"] or "-"),
                ]
            )
        body.append(
            table(
                ["run", "status", "step", "trained on", "eval sets", "latest evaluation", "updated"],
                rows,
                raw_columns=range(7),
            )
        )
    return page("models", "".join(body), [("/models", "models")])


def _eval_section(run: str, name: str, lines: list[dict[str, Any]], known: set[str]) -> str:
    names = sorted({m for line in lines for m in line.get("metrics") or {}})
    chance: dict[str, Any] = {}
    for line in lines:
        chance.update({k: v for k, v in (line.get("chance") or {}).items() if v is not None})
    series = {
        m: [
            (line["step"], (line.get("metrics") or {}).get(m))
            for line in lines
            if (line.get("metrics") or {}).get(m) is not None
        ]
        for m in headline(dict.fromkeys(names), limit=8)
    }
    rows = []
    if chance:
        rows.append(["chance", *[_num(chance.get(m)) for m in names], "-"])
    rows += [
        [line["step"], *[_num((line.get("metrics") or {}).get(m)) for m in names], _num(line.get("checkpoint"))]
        for line in lines
    ]
    latest = lines[-1]
    images = "".join(
        f'<figure class="card"><img class="eval-file" src="{h(file_href(run, f))}" alt="{h(f.rsplit("/", 1)[-1])}">'
        f'<figcaption class="muted">{h(f.rsplit("/", 1)[-1])} (step {h(latest["step"])})</figcaption></figure>'
        for f in latest.get("files") or []
        if f.lower().endswith(_IMAGE_EXTS)
    )
    files = [
        f"<li>step {h(line['step'])}: {link(file_href(run, f), f)}</li>"
        for line in lines
        for f in line.get("files") or []
    ]
    return (
        f'<section class="eval-set" data-set="{h(name)}"><h3>{dataset_link(name, known)}</h3>'
        f'<div class="card chart">{line_chart(f"{name}: metrics over steps", series, chance)}</div>'
        + table(["step", *names, "checkpoint"], rows)
        + (f'<h4>Latest evaluation (step {h(latest["step"])})</h4><div class="charts">{images}</div>' if images else "")
        + (f"<details><summary>files ({h(len(files))})</summary><ul>{''.join(files)}</ul></details>" if files else "")
        + "</section>"
    )


def run_page(catalog: Catalog, run: str) -> str:
    r = load_run(catalog.root, run)
    known = _known(catalog)
    datasets = r.get("datasets") or {}
    ordered = sorted(datasets.items(), key=lambda kv: ("train" not in roles_of(kv[1]), kv[0]))
    by_set: dict[str, list[dict[str, Any]]] = {}
    for line in sorted(r.get("evals") or [], key=lambda e: e.get("step", 0)):
        by_set.setdefault(line.get("set", "?"), []).append(line)
    checkpoints = r.get("checkpoints") or []
    body = [
        f"<h1>{h(run)}</h1>",
        f'<p>status <span id="run-status">{h(r.get("status") or "-")}</span>; step <span id="run-step">{h(_step(r))}</span>; '
        f"code {h(r.get('code_version') or '-')}; created {h(r.get('created'))}; updated {h(r.get('updated'))}"
        + (f"; started {h(r['started'])}" if r.get("started") else "")
        + (f"; finished {h(r['finished'])}" if r.get("finished") else "")
        + (f"; logs {h(r['log_dir'])}" if r.get("log_dir") else "")
        + ".</p>",
        "<h2>Objectives</h2>",
        table(["objective", "weight"], [[k, v] for k, v in (r.get("objectives") or {}).items()])
        if r.get("objectives")
        else "<p>none recorded</p>",
        "<h2>Datasets</h2>",
        table(
            ["dataset", "roles", "weight", "samples seen"],
            [
                [
                    dataset_link(ref, known),
                    h(", ".join(roles_of(e)) or "-"),
                    h(_num(e.get("weight"))),
                    h(_num(e.get("samples_seen"))),
                ]
                for ref, e in ordered
            ],
            raw_columns=range(4),
        )
        if ordered
        else "<p>none recorded</p>",
        "<h2>Checkpoints</h2>",
        table(["step", "path"], [[c.get("step"), c.get("path", "-")] for c in checkpoints])
        if checkpoints
        else "<p>none recorded</p>",
    ]
    if r.get("summary"):
        body += ["<h2>Summary</h2>", table(["key", "value"], [[k, _num(v)] for k, v in r["summary"].items()])]
    body.append("<h2>Evaluations</h2>")
    body.append(
        "".join(_eval_section(run, name, lines, known) for name, lines in sorted(by_set.items()))
        or "<p>none recorded</p>"
    )
    body += [
        "<h2>Config</h2>",
        f'<details><summary>resolved config</summary><pre id="run-config">{h(json.dumps(r.get("config") or {}, indent=2, sort_keys=True, ensure_ascii=False))}</pre></details>',
    ]
    return page(f"run {run}", "".join(body), [("/models", "models"), (run_href(run), run)])
