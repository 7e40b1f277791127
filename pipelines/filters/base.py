"""The filter contract (after datatrove's BaseFilter).

A filter only answers whether a row is kept: `True`, or `(False, reason)` with a reason
from `catalog.reasons.REASONS`. Counting reasons, recording rejects and choosing the
first failing check belong to the stage that runs the filters, not to the filters.

Rows are plain dicts (Ray Data batches turn into them). Keys a filter may read:
`key`, `url`, `caption` (already normalised by the text-cleaning step), `orig_width`,
`orig_height`, `width`, `height`, `jpg` (bytes), and any key an earlier step added
(e.g. `lang`, `lang_score`). A filter that computes something useful (a language score)
may write it into the row so it ends in the sample's json.

Filters that hold a model load it in `setup()`, called once per Ray actor.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

from catalog.registry import Registry

Verdict = Union[bool, tuple[bool, str]]


class Filter:
    """One check. Subclasses set `name` and `reason` and implement `keep`."""

    name: ClassVar[str]
    reason: ClassVar[str]

    def setup(self) -> None:
        """Load models or tables; called once per worker before the first batch."""

    def keep(self, row: dict[str, Any]) -> Verdict:
        raise NotImplementedError

    def keep_batch(self, rows: list[dict[str, Any]]) -> list[Verdict]:
        """Batched form; override where a model is faster on batches (spaCy's pipe)."""
        return [self.keep(row) for row in rows]


FILTERS: Registry[type[Filter]] = Registry("filter")


def reject(reason: str) -> tuple[bool, str]:
    return (False, reason)
