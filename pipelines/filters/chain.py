"""The text stage's per-row part: clean each caption, scrub names, score every text check, decide.

`TextChain(config).run(rows)` is the one entry point the text stage calls, from a Ray
Data actor (`pipelines.stages.text.TextActor`), so models load once per actor. The
filters are the text-stage filters selected in `config.checks` (`FilterConfig.filters("text")`),
in `catalog.reasons` check order. Per row:
 1. `normalize_caption` cleans the caption;
 2. person names become `config.person_placeholder` (`person.PersonNameSubstituter`) in
    every non-empty caption, kept or not, so no later step (and no rejects sample) sees a
    raw name; the checks that count English words read this scrubbed caption;
 3. every selected check SCORES every row (`Filter.score_batch`), not only the rows the
    earlier checks kept, so `scores.parquet` can replay any threshold (`whatif`);
 4. the reason is the first check, in check order, whose `decide` rejects the row.

Every output row is the input row plus these columns (same keys for every row):

| column | value |
|---|---|
| `caption` | cleaned caption with names replaced (`""` when empty); never the raw caption |
| `reason` | `None` when every check keeps it, else the first failing reason |
| `TEXT_SCORES` | each check's scores (`catalog.scores.COLUMNS`); `None` for a check turned off |

Whole-input filters (`Filter.whole_input`: `repeated_caption`) need a count over every
input row, so they are not run here: `pipelines.stages.text` counts
`pipelines.filters.clean.caption_repeat_key(raw_caption)` over all rows and applies them.

Speed (`bench/filters.py`; docs/benchmarks.md): a row's outputs depend on its caption alone,
never on the batch (pinned by a test), and the shortcuts that keep the chain cheap are each
exact and described where they live: cleaning skips ftfy on plain ASCII (`clean`); a
caption is split into words once for every check (`english.caption_words`); fastText is
asked for its top label only (`not_english`); spaCy sees only the captions whose outcome it
decides: the tagger the 1.5% of real captions `single_pos` cannot settle from its function
words, NER the 0.2% where a name's verdict depends on it (`person`). One fastText call per
caption is then the largest cost left.
"""

from __future__ import annotations

from typing import Any

from catalog import assets
from pipelines.filters.clean import normalize_caption
from pipelines.filters.config import FilterConfig
from pipelines.filters.person import PersonNameSubstituter

# The per-row text scores the chain writes (catalog.scores.COLUMNS), in that order.
TEXT_SCORES = (
    "caption_empty",
    "meaningless",
    "lang",
    "lang_prob",
    "lang_en_prob",
    "lid_english_ratio",
    "n_words",
    "english_ratio",
    "pos",
    "pos_words",
    "sensitive",
    "name_gate",
    "person_substituted",
)


class TextChain:
    """Cleaning + person-name substitution + text checks over batches of row dicts."""

    def __init__(self, config: FilterConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = FilterConfig.model_validate(config)
        self.config = config or FilterConfig()
        self.filters = [f for f in self.config.filters("text") if not f.whole_input]
        self.person = PersonNameSubstituter(self.config) if self.config.person_substitution else None
        self._ready = False

    def setup(self) -> None:
        """Load every model once (fastText, WordNet, spaCy, the name lexicons).

        Prepares the cached assets first when missing: a Ray job runs from an uploaded copy
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
        """Per row: the row + its scrubbed caption, its scores and its `reason` (module docstring)."""
        self.setup()
        work: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if "caption" not in row:
                raise KeyError(f"text chain: row {i} (key {row.get('key')!r}) has no 'caption' field")
            caption = normalize_caption(row["caption"], self.config.max_caption_chars)
            work.append({"caption": caption, "scrubbed": caption, "name_gate": False, "person_substituted": False})
        if self.person is not None:
            todo = [i for i, w in enumerate(work) if w["caption"]]
            captions = [work[i]["caption"] for i in todo]
            levels = self.person.gate_levels(captions)
            scrubbed = self.person.substitute_batch(captions, levels)
            for i, level, (text, changed) in zip(todo, levels, scrubbed):
                if level:  # the rest keep their defaults
                    work[i].update(scrubbed=text, name_gate=True, person_substituted=changed)
        reasons: list[str | None] = [None] * len(work)
        for f in self.filters:
            for i, verdict in enumerate(f.keep_batch(work)):  # scores every row, writes the scores into it
                if reasons[i] is None and verdict is not True:
                    reasons[i] = verdict[1]
        out = []
        for row, w, reason in zip(rows, work, reasons):
            new = dict(row)
            new.update(zip(TEXT_SCORES, map(w.get, TEXT_SCORES)))
            new["caption"] = w["scrubbed"]
            new["reason"] = reason
            out.append(new)
        return out
