"""The text stage's per-row part: clean each caption, run the text filters in check order, scrub names.

`TextChain(config).run(rows)` is the one entry point the ingestion job calls, from a Ray
Data actor (`map_batches(TextChain, fn_constructor_kwargs={"config": cfg}, ...)`: the
actor's `__call__` takes a numpy/pandas-style column batch). Models load once per actor.
The filters are the text-stage filters selected in `config.checks`
(`FilterConfig.filters("text")`), run in `catalog.reasons` check order.

Every output row is the input row plus these columns (same keys for every row, so a batch
stays columnar):

| column | kept row | rejected row |
|---|---|---|
| `caption` | cleaned caption, person names -> `<person>` | `""` (a raw caption is never passed on) |
| `reason` | `None` | first failing reason from `catalog.reasons.REASONS` |
| `lang`, `lang_score` | fastText top label and its probability | as far as computed, else `""` / `nan` |
| `english_ratio` | share of English words | as far as computed, else `nan` |
| `person_substituted` | whether a name was replaced | `False` |

Whole-input filters (`Filter.whole_input`: `repeated_caption`) need a count over every
input row, so they are not run here: `pipelines.stages.text` counts
`pipelines.filters.clean.caption_repeat_key(raw_caption)` over all rows and applies them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from catalog import assets
from pipelines.filters.clean import normalize_caption
from pipelines.filters.config import FilterConfig
from pipelines.filters.person import PersonNameSubstituter

OUTPUT_COLUMNS = ("caption", "reason", "lang", "lang_score", "english_ratio", "person_substituted")


class TextChain:
    """Cleaning + text filters + person-name substitution over batches of row dicts."""

    def __init__(self, config: FilterConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = FilterConfig.model_validate(config)
        self.config = config or FilterConfig()
        self.filters = [f for f in self.config.filters("text") if not f.whole_input]
        self.person = PersonNameSubstituter(self.config) if self.config.person_substitution else None
        self._ready = False

    def setup(self) -> None:
        """Load every model once (fastText, WordNet, spaCy).

        Prepares the WordNet copy first when missing: a Ray job runs from an uploaded copy
        of the repository (no git-ignored cache) and on nodes that never ran `make setup`;
        preparing is local, offline and idempotent, and names the Debian package if absent.
        """
        if self._ready:
            return
        assets.prepare()
        for f in self.filters:
            f.setup()
        if self.person is not None:
            self.person.setup()
        self._ready = True

    def run(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per row: the row + cleaned caption and fields, or `reason` = the first failing check."""
        self.setup()
        out: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if "caption" not in row:
                raise KeyError(f"text chain: row {i} (key {row.get('key')!r}) has no 'caption' field")
            new = dict(row)
            new.update(
                caption=normalize_caption(row["caption"], self.config.max_caption_chars),
                reason=None,
                lang="",
                lang_score=math.nan,
                english_ratio=math.nan,
                person_substituted=False,
            )
            out.append(new)
        live = list(range(len(out)))
        for f in self.filters:
            if not live:
                break
            verdicts = f.keep_batch([out[i] for i in live])
            still = []
            for i, verdict in zip(live, verdicts):
                if verdict is True:
                    still.append(i)
                else:
                    out[i]["reason"] = verdict[1]
            live = still
        for row in out:
            if row["reason"] is not None:
                row["caption"] = ""
        if self.person is not None and live:
            captions = self.person.substitute_batch([out[i]["caption"] for i in live])
            for i, (caption, changed) in zip(live, captions):
                out[i]["caption"] = caption
                out[i]["person_substituted"] = changed
        return out

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Ray Data `map_batches` form: a column batch (numpy dict or pandas) in, numpy dict out."""
        if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas.DataFrame
            rows = batch.to_dict("records")
            columns = list(batch.columns)
        else:
            columns = list(batch)
            n = len(batch[columns[0]]) if columns else 0
            rows = [{c: batch[c][i] for c in columns} for i in range(n)]
        result = self.run(rows)
        names = columns + [c for c in OUTPUT_COLUMNS if c not in columns]
        cols: dict[str, np.ndarray] = {}
        for c in names:
            values = [r[c] for r in result]
            if c in ("reason", "lang", "caption"):
                cols[c] = np.array(["" if v is None else v for v in values], dtype=object)
            elif c in ("lang_score", "english_ratio"):
                cols[c] = np.array(values, dtype=np.float64)
            elif c == "person_substituted":
                cols[c] = np.array(values, dtype=bool)
            else:
                cols[c] = np.array(values, dtype=object) if not isinstance(batch, dict) else _like(batch[c], values)
        return cols


def _like(template: Any, values: list[Any]) -> np.ndarray:
    arr = np.asarray(template)
    try:
        return np.array(values, dtype=arr.dtype)
    except (TypeError, ValueError):
        return np.array(values, dtype=object)
