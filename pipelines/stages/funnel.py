"""Per-stage accounting: rows in, kept, rejected by reason; conservation is checked, not hoped for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from catalog.reasons import REASONS, check_reason


class ConservationError(RuntimeError):
    """Rows were lost or counted twice; the build must not publish a version."""


@dataclass
class StageCount:
    stage: str
    n_in: int
    kept: int
    rejected: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, stage: str, n_in: int, reasons: Iterable[str | None]) -> StageCount:
        """Count a stage from one outcome per input row (None = kept)."""
        rejected: Counter = Counter()
        kept = 0
        for r in reasons:
            if r is None:
                kept += 1
            else:
                rejected[check_reason(r)] += 1
        count = cls(stage, n_in, kept, rejected)
        count.check()
        return count

    @classmethod
    def add(cls, parts: Iterable[dict[str, Any]]) -> StageCount:
        """One stage's count over several sets of rows, from each set's `to_dict()` (the parts of a build)."""
        parts = list(parts)
        rejected: Counter = Counter()
        for p in parts:
            rejected.update(p["rejected"])
        count = cls(parts[0]["stage"], sum(p["in"] for p in parts), sum(p["kept"] for p in parts), rejected)
        count.check()
        return count

    def check(self) -> None:
        total = self.kept + sum(self.rejected.values())
        if total != self.n_in:
            raise ConservationError(
                f"stage {self.stage!r}: {self.n_in} rows in but {self.kept} kept + "
                f"{sum(self.rejected.values())} rejected = {total}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "in": self.n_in, "kept": self.kept, "rejected": _ordered(self.rejected)}


def funnel(stages: list[StageCount]) -> dict[str, Any]:
    """The manifest's `funnel` object; raises ConservationError when stages do not chain up."""
    for stage in stages:
        stage.check()
    for prev, nxt in zip(stages, stages[1:]):
        if prev.kept != nxt.n_in:
            raise ConservationError(f"stage {prev.stage!r} kept {prev.kept} but stage {nxt.stage!r} got {nxt.n_in}")
    total: Counter = Counter()
    for stage in stages:
        total.update(stage.rejected)
    out = {
        "in": stages[0].n_in,
        "kept": stages[-1].kept,
        "rejected": _ordered(total),
        "stages": [s.to_dict() for s in stages],
    }
    if out["in"] != out["kept"] + sum(total.values()):
        raise ConservationError(f"overall: {out['in']} in != {out['kept']} kept + {sum(total.values())} rejected")
    return out


def check_rows(n: int, kept_rows: list[int], rejected_rows: list[int]) -> None:
    """Every input row 0..n-1 is kept or rejected, exactly once."""
    seen = kept_rows + rejected_rows
    if len(seen) != n or set(seen) != set(range(n)):
        missing = sorted(set(range(n)) - set(seen))[:5]
        twice = len(seen) - len(set(seen))
        raise ConservationError(
            f"{n} input rows, {len(kept_rows)} kept + {len(rejected_rows)} rejected; missing rows {missing}, {twice} counted twice"
        )


def summary_table(f: dict[str, Any]) -> str:
    """A plain-text funnel table: one line per stage, then the reasons with counts."""
    lines = [f"{'stage':<10} {'in':>10} {'kept':>10} {'rejected':>10}  reasons"]
    for s in f["stages"]:
        reasons = ", ".join(f"{r}={n}" for r, n in s["rejected"].items())
        lines.append(f"{s['stage']:<10} {s['in']:>10} {s['kept']:>10} {sum(s['rejected'].values()):>10}  {reasons}")
    share = f["kept"] / f["in"] if f["in"] else 0.0
    lines.append(f"{'total':<10} {f['in']:>10} {f['kept']:>10} {f['in'] - f['kept']:>10}  kept {share:.1%}")
    return "\n".join(lines)


def _ordered(counter: Counter) -> dict[str, int]:
    return {r: counter[r] for r in REASONS if counter.get(r)}
