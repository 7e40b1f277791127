"""The filter contract (after datatrove's BaseFilter) and the registry filters are selected from.

A filter only answers whether a row is kept: `True`, or `(False, reason)` with its
`reason` from `catalog.reasons.REASONS`. Counting reasons, recording rejects and choosing
the first failing check belong to the stage that runs the filters, not to the filters.

A check is two steps, so every decision can be explained and replayed:
 - `score(row)` measures (a language probability, a word ratio, a size) and returns the
   filter's `scores` columns (`catalog.scores.COLUMNS`). A score never depends on an
   option, except the options listed in `rescore_options` (a word list);
 - `decide(scores)` answers from those scores and the filter's options alone.
`keep(row)` is the two in a row (and writes the scores into the row). The build records
every row's scores in `scores.parquet`; `python -m pipelines whatif` calls `decide` with
other options on them, `python -m pipelines explain` prints them check by check. A filter
that only overrides `keep` (the quickest extension) works in builds and in `explain
--caption`, but records no scores, so `whatif` and `explain --row` refuse a build using it.
The stage a filter runs in is its reason's stage in the vocabulary (`catalog.reasons.STAGE_OF`),
and every stage runs its filters in the vocabulary's check order.

Adding a filter: one module in this package with a `@register`-ed subclass of `Filter`
(its `name`, its `reason` in `catalog.reasons`, an `Options` model with its thresholds),
then select it in the build config's `filter.checks` (docs/pipeline.md). Importing
`pipelines.filters` imports every module of the package, which registers the built-ins.

Rows are plain dicts (Ray Data batches turn into them). Keys a filter may read: text
stage `key`, `url`, `caption` (already normalised by the text-cleaning step), and
`repeat_count` for filters with `whole_input` set; image stage `jpg` (bytes),
`orig_width`, `orig_height`; and any key an earlier filter added (e.g. `lang`). A filter
that computes something useful (a language score) may write it into the row so it ends
in the sample's json.

Filters that hold a model load it in `setup()`, called once per Ray actor.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

from catalog.config import Config
from catalog.reasons import STAGE_OF, check_reason, rank
from catalog.registry import Registry

Verdict = Union[bool, tuple[bool, str]]


class Filter:
    """One check. Subclasses set `name` and `reason`, define `Options`, and implement `keep`.

    `settings` is the `filter:` section (`pipelines.filters.config.FilterConfig`) for the
    keys the text stage shares (e.g. `spacy_batch_size`); most filters ignore it.
    """

    name: ClassVar[str]
    reason: ClassVar[str]
    # True: the filter answers on a count the stage makes over the whole input (the row's
    # `repeat_count`), so the stage applies it after its per-row filters.
    whole_input: ClassVar[bool] = False
    # The score columns `decide` reads (catalog.scores.COLUMNS).
    scores: ClassVar[tuple[str, ...]] = ()
    # Options that change what `score` measures (not only the verdict): a change needs re-scoring.
    rescore_options: ClassVar[frozenset[str]] = frozenset()

    class Options(Config):
        """The filter's keys under `filter.checks.NAME` (none by default)."""

    def __init__(self, options: Config | dict[str, Any] | None = None, settings: Any = None) -> None:
        self.options = options if isinstance(options, self.Options) else self.Options.model_validate(options or {})
        self.settings = settings

    @classmethod
    def stage(cls) -> str:
        return STAGE_OF[cls.reason]

    def setup(self) -> None:
        """Load models or tables; called once per worker before the first batch."""

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        """The `scores` columns measured on `row` (default: read from the row as they are)."""
        return {name: row.get(name) for name in self.scores}

    def score_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batched form; override where a model is faster on batches (spaCy's pipe)."""
        return [self.score(row) for row in rows]

    def decide(self, scores: dict[str, Any]) -> Verdict:
        """The verdict from the scores and the options alone."""
        raise NotImplementedError

    @classmethod
    def records_scores(cls) -> bool:
        """True when the filter decides from recorded scores (defines `decide`), not in `keep` alone."""
        return cls.decide is not Filter.decide

    def keep(self, row: dict[str, Any]) -> Verdict:
        return self.keep_batch([row])[0]

    def keep_batch(self, rows: list[dict[str, Any]]) -> list[Verdict]:
        """Score, write the scores into each row, decide (a `keep`-only filter: its `keep` per row)."""
        if not self.records_scores():
            return [self.keep(row) for row in rows]
        scores = self.score_batch(rows)
        for row, row_scores in zip(rows, scores):
            row.update(row_scores)
        return list(map(self.decide, scores))

    def thresholds(self) -> dict[str, Any]:
        """The options `decide` compares scores with (for `explain`): every option by default."""
        return {k: v for k, v in self.options.model_dump().items() if k not in self.rescore_options}


FILTERS: Registry[type[Filter]] = Registry("filter")


def register(cls: type[Filter]) -> type[Filter]:
    """Class decorator: add `cls` to FILTERS under `cls.name` (its reason must be in the vocabulary)."""
    check_reason(cls.reason)
    if not (isinstance(cls.Options, type) and issubclass(cls.Options, Config)):
        raise TypeError(f"filter {cls.name!r}: Options must subclass catalog.config.Config")
    return FILTERS.register(cls.name)(cls)


def check_order(names: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """Registered filter names sorted in check order (by reason, then by name)."""
    return sorted(names, key=lambda name: (rank(FILTERS.get(name).reason), name))


def reject(reason: str) -> tuple[bool, str]:
    return (False, reason)
