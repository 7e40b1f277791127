"""The text stage: clean each caption, run the text filters in check order, scrub names.

`TextChain(config).run(rows)` is the one entry point the ingestion job calls, from a Ray
Data actor (`map_batches(TextChain, fn_constructor_kwargs={"config": cfg}, ...)`: the
actor's `__call__` takes a numpy/pandas-style column batch). Models load once per actor.

Every output row is the input row plus these columns (same keys for every row, so a batch
stays columnar):

| column | kept row | rejected row |
|---|---|---|
| `caption` | cleaned caption, person names -> `<person>` | `""` (a raw caption is never passed on) |
| `reason` | `None` | first failing reason from `catalog.reasons.REASONS` |
| `lang`, `lang_score` | fastText top label and its probability | as far as computed, else `""` / `nan` |
| `english_ratio` | share of English words | as far as computed, else `nan` |
| `person_substituted` | whether a name was replaced | `False` |

The repeated-caption check (reason 7) needs a count over the whole input, so it is not
here: count `pipelines.filters.clean.caption_repeat_key(raw_caption)` over all rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from catalog import assets
from pipelines.filters.base import Filter
from pipelines.filters.clean import normalize_caption
from pipelines.filters.config import TEXT_FILTER_NAMES, TextFilterConfig
from pipelines.filters.language import EnglishWords, LowEnglishRatio, NotEnglish
from pipelines.filters.person import PersonNameSubstituter
from pipelines.filters.pos import SinglePos
from pipelines.filters.text import EmptyCaption, MeaninglessCaption, SensitiveWords

OUTPUT_COLUMNS = ("caption", "reason", "lang", "lang_score", "english_ratio", "person_substituted")


def build_filters(config: TextFilterConfig) -> list[Filter]:
    """The enabled filters in `catalog.reasons` check order."""
    words = EnglishWords()
    make = {
        "empty_caption": lambda: EmptyCaption(config),
        "meaningless_caption": lambda: MeaninglessCaption(config),
        "not_english": lambda: NotEnglish(config, words),
        "low_english_ratio": lambda: LowEnglishRatio(config, words),
        "single_pos": lambda: SinglePos(config),
        "sensitive": lambda: SensitiveWords(config),
    }
    return [make[name]() for name in TEXT_FILTER_NAMES if name in config.filters]


class TextChain:
    """Cleaning + text filters + person-name substitution over batches of row dicts."""

    def __init__(self, config: TextFilterConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = TextFilterConfig.model_validate(config)
        self.config = config or TextFilterConfig()
        self.filters = build_filters(self.config)
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


def run_text_chain(rows: list[dict[str, Any]], config: TextFilterConfig | None = None) -> list[dict[str, Any]]:
    """One-shot form of `TextChain(config).run(rows)` (models are cached per process)."""
    return TextChain(config).run(rows)
