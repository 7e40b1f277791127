"""`whatif NAME@VERSION --set KEY=VALUE ...`: every row's fate under other thresholds, from the recorded scores.

Nothing is downloaded and no model is loaded: the version's `scores.parquet` is replayed
(`pipelines.stages.replay.Replay`) with the build's stored config plus the given settings.
Settings it can replay (`replayable`): every option of a check that decides from recorded
scores (`filter.checks.NAME.KEY`, e.g. `filter.checks.not_english.confident_en=0.5`,
`filter.checks.low_english_ratio.min_ratio=0.9`, `filter.checks.image_too_small.min_size=300`),
turning a check off (`filter.checks.NAME=false`), and `dedup.max_hamming` / `dedup.enabled`.
Settings that change no fate (`shard.*`, `ray.*`, `rejects.*` ...) are allowed and ignored;
anything else (the source, the caption cleaning, a word list, the download size) changes
what is measured, and is refused with the command that rebuilds instead.

It prints the funnel before and after, the rows gained and lost per reason with a few
examples (scrubbed captions from kept.parquet / rejects_sample.parquet), the rows whose
fate only a real build can decide (text checks now pass but the row was never downloaded),
and the command that builds that version for real (`python -m pipelines build NAME@VERSION
--set ...`). Its fates equal a rebuild's (tests/e2e/test_quality_replay.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections import Counter
from dataclasses import dataclass
from typing import Any

from catalog import storage
from catalog.cli import add_overrides
from catalog.config import apply_overrides, parse_override, validate
from catalog.errors import UserError
from catalog.parquet import read_parquet
from catalog.reasons import KEEP, REASONS
from catalog.scores import REJECTS_SAMPLE_FILE
from pipelines.filters.base import FILTERS
from pipelines.stages.config import BuildConfig
from pipelines.stages.replay import UNKNOWN, Built, Replay, load_built

NEUTRAL = ("shard", "ray", "rejects", "keep_work", "augment", "filter.spacy_batch_size", "download.thread_count")
DEDUP = ("dedup.max_hamming", "dedup.enabled")
STAGE_ORDER = ("text", "download", "image", "dedup")


@dataclass
class WhatIf:
    built: Built
    cfg: BuildConfig
    settings: list[str]
    before: list[str]  # fate per row: KEEP or a reason
    after: list[str]  # fate per row: KEEP, a reason or UNKNOWN
    stages_before: list[str | None]
    stages_after: list[str | None]


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose value differs between two resolved configs (a section turned into a value
    counts as the section: `filter.checks.single_pos`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if old == new else [prefix]


def check_replayable(keys: list[str], built: BuildConfig) -> None:
    """Refuse a setting whose effect needs re-measuring (module docstring)."""
    bad = []
    for key in keys:
        if key in DEDUP or any(key == n or key.startswith(n + ".") for n in NEUTRAL):
            continue
        parts = key.split(".")
        if parts[:2] == ["filter", "checks"] and len(parts) >= 3 and parts[2] in FILTERS:
            cls = FILTERS.get(parts[2])
            was_on = built.filter.checks.get(parts[2]) not in (None, False)
            if cls.records_scores() and was_on and (len(parts) == 3 or parts[3] not in cls.rescore_options):
                continue
        bad.append(key)
    if bad:
        raise UserError(
            f"whatif: {', '.join(bad)} cannot be replayed on recorded scores (it changes what is measured, or the "
            "check was off in the build); replayable: filter.checks.NAME.KEY of a check that was on, "
            "filter.checks.NAME=false, dedup.max_hamming, dedup.enabled"
        )


def whatif(root: str, ref: str, settings: list[str]) -> WhatIf:
    """Replay `ref`'s recorded scores under its config + `settings` (`KEY=VALUE`)."""
    if not settings:
        raise UserError(
            "whatif: give at least one --set KEY=VALUE, e.g. --set filter.checks.not_english.confident_en=0.6"
        )
    for text in settings:
        parse_override(text)
    built = load_built(root, ref)
    data = apply_overrides(built.manifest["config"], settings)
    cfg = validate(BuildConfig, data, f"whatif {ref} --set")
    check_replayable(changed_keys(built.cfg.to_dict(), cfg.to_dict()), built.cfg)
    reasons = built.scores.column("reason").to_pylist()
    before = [r or KEEP for r in reasons]
    fates = Replay(cfg, built.cfg).fates(built.scores)
    return WhatIf(
        built,
        cfg,
        settings,
        before,
        [r or KEEP for r, _ in fates],
        built.scores.column("stage").to_pylist(),
        [s for _, s in fates],
    )


def funnel_lines(fates: list[str], stages: list[str | None], n: int) -> list[tuple[str, int, int]]:
    """(stage, rows in, rows kept) per stage from per-row fates and deciding stages."""
    out, alive = [], n
    for stage in STAGE_ORDER:
        gone = sum(1 for f, s in zip(fates, stages) if s == stage and f != KEEP)
        if alive or gone:
            out.append((stage, alive, alive - gone))
        alive -= gone
    return out


def report(w: WhatIf, root: str, examples: int = 3) -> str:
    n = len(w.before)
    lines = [
        f"whatif: {w.built.ref} with {' '.join(w.settings)}: {n} recorded rows replayed (nothing downloaded, no model)"
    ]
    b, a = Counter(w.before), Counter(w.after)
    fates = [KEEP, *REASONS, UNKNOWN]
    moved_in = Counter(x for x, y in zip(w.after, w.before) if x != y)
    moved_out = Counter(y for x, y in zip(w.after, w.before) if x != y)
    lines.append(f"  {'fate':<20} {'before':>8} {'after':>8} {'gained':>8} {'lost':>8}")
    for fate in fates:
        if b[fate] or a[fate]:
            lines.append(f"  {fate:<20} {b[fate]:>8} {a[fate]:>8} {moved_in[fate]:>+8} {-moved_out[fate]:>+8}")
    lines.append(f"  {'funnel':<20} {'before in -> kept':>20}   after in -> kept")
    after = dict((s, (i, k)) for s, i, k in funnel_lines(w.after, w.stages_after, n))
    for stage, i, k in funnel_lines(w.before, w.stages_before, n):
        ai, ak = after.get(stage, (0, 0))
        lines.append(f"  {stage:<20} {i:>9} -> {k:<8}   {ai:>6} -> {ak}")
    changed = [(i, x, y) for i, (x, y) in enumerate(zip(w.before, w.after)) if x != y]
    lines.append(f"  rows changing fate: {len(changed)}")
    if changed:
        captions = _captions(w, [w.built.scores.column("key")[i].as_py() for i, _, _ in changed])
        groups: dict[tuple[str, str], list[int]] = {}
        for i, x, y in changed:
            groups.setdefault((x, y), []).append(i)
        for (x, y), rows in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"    {x} -> {y}: {len(rows)}")
            for i in rows[:examples]:
                key = w.built.scores.column("key")[i].as_py()
                url, caption = captions.get(key, (None, None))
                text = f" {json.dumps(caption, ensure_ascii=False)}" if caption else ""
                lines.append(f"      row {w.built.scores.column('row')[i].as_py()} {key}{text} {url or ''}".rstrip())
    unknown = a[UNKNOWN]
    if unknown:
        lines.append(
            f"  {unknown} rows pass the text checks now but were never downloaded: only a build can decide them "
            "(the dedup above does not see them)"
        )
    lines.append("  to build it for real: " + build_command(w.built.ref, root, w.settings))
    return "\n".join(lines)


def build_command(ref: str, root: str, settings: list[str]) -> str:
    sets = " ".join(f"--set {shlex.quote(s)}" for s in settings)
    return f"python -m pipelines build {ref} --root {shlex.quote(root)} {sets}"


def _captions(w: WhatIf, keys: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """key -> (url, scrubbed caption) for the examples: kept.parquet, then the rejects sample."""
    wanted = set(keys)
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in ("kept.parquet", REJECTS_SAMPLE_FILE):
        uri = w.built.version_file(name)
        if not storage.exists(uri):
            continue
        t = read_parquet(uri, columns=["key", "url", "caption"])
        for key, url, caption in zip(*(t.column(c).to_pylist() for c in ("key", "url", "caption"))):
            if key in wanted and key not in out:
                out[key] = (url, caption)
    return out


def add_parser(subparsers: Any) -> None:
    text = "replay a built version's recorded scores under other thresholds (no download, no model)"
    p = subparsers.add_parser("whatif", help=text, description=text)
    p.add_argument("version", metavar="NAME@VERSION", help="a build version, e.g. demo@1")
    p.add_argument("--root", default=None, help="datasets root (default: $LIPFORGE_ROOT or ./data)")
    p.add_argument("--examples", type=int, default=3, help="example rows shown per change (default 3)")
    p.add_argument("--json", action="store_true", help="print the fates as JSON")
    add_overrides(p, "filter.checks.not_english.confident_en=0.6")


def main(args: argparse.Namespace) -> int:
    root = args.root or os.environ.get("LIPFORGE_ROOT") or "./data"
    w = whatif(root, args.version, args.overrides)
    if args.json:
        keys = w.built.scores.column("key").to_pylist()
        print(
            json.dumps(
                {
                    "version": w.built.ref,
                    "settings": w.settings,
                    "before": dict(zip(keys, w.before)),
                    "after": dict(zip(keys, w.after)),
                },
                indent=1,
            )
        )
    else:
        print(report(w, root, args.examples))
    return 0
