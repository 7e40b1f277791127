"""Throughput of each text filter and of the whole text chain, samples/s on one core.

    .venv/bin/python bench/filters.py [--data ../shared/realdata/flickr/captions_all.tsv] [--repeat 1]

Pins itself to one CPU (sched_setaffinity) so numbers are per core. Each filter runs on
every caption (already cleaned) in isolation; the English-word ratio row is
`EnglishWords.ratio` alone (what not_english and low_english_ratio each compute), the
person row is the gate plus spaCy NER on the captions that need it; the chain row is the
real stage (cleaning, person-name substitution, every check scoring every row). The target
for the whole stage is 300 samples/s/core; the ratio column compares each row with it.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: bench/catalog.py would shadow the package

from catalog import assets  # noqa: E402
from pipelines.filters import FilterConfig, TextChain, normalize_caption  # noqa: E402
from pipelines.filters.english import english_words  # noqa: E402
from pipelines.filters.person import PersonNameSubstituter  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "flickr" / "captions_all.tsv"
TARGET = 300.0


def load_captions(path: Path) -> list[str]:
    if not path.is_file():
        raise SystemExit(f"bench/filters.py: {path} not found (pass --data FILE.tsv with a 'caption' column)")
    with path.open(encoding="utf-8", newline="") as fp:
        reader = csv.DictReader(fp, delimiter="\t")
        if "caption" not in (reader.fieldnames or []):
            raise SystemExit(f"bench/filters.py: {path} has no 'caption' column (columns: {reader.fieldnames})")
        return [row["caption"] for row in reader]


def timed(fn: Callable[[], Any], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    assets.prepare()
    raw = load_captions(args.data)
    n = len(raw)
    config = FilterConfig()
    cleaned = [normalize_caption(c, config.max_caption_chars) for c in raw]
    rows: list[tuple[str, float, str]] = []

    rows.append(("normalize_caption", timed(lambda: [normalize_caption(c) for c in raw], n, args.repeat), ""))
    for f in TextChain(config).filters:
        f.setup()
        f.keep_batch([{"caption": c} for c in cleaned[:200]])  # warm caches the way a worker would
        result: list[Any] = []
        rate = timed(
            lambda f=f, result=result: result.append(f.keep_batch([{"caption": c} for c in cleaned])), n, args.repeat
        )
        rejected = sum(1 for v in result[-1] if v is not True)
        rows.append((f.name, rate, f"{rejected} rejected"))
    words = english_words()
    words.setup()
    ratios: list[Any] = []
    rate = timed(lambda: ratios.append([words.ratio(c) for c in cleaned]), n, args.repeat)
    rows.append(("English-word ratio", rate, f"{sum(r < 0.8 for r in ratios[-1])} below 0.8"))
    person = PersonNameSubstituter(config)
    person.setup()
    gated = sum(person.gate(c) for c in cleaned)
    needs_ner = sum(person._gate_level(c) == 2 for c in cleaned)
    subs: list[Any] = []
    rate = timed(lambda: subs.append(person.substitute_batch(cleaned)), n, args.repeat)
    note = f"{gated} gated ({gated / n:.1%}; {needs_ner} to NER), {sum(s[1] for s in subs[-1])} replaced"
    rows.append(("person names (gate + NER)", rate, note))
    chain = TextChain(config)
    chain.setup()
    out: list[Any] = []
    rate = timed(lambda: out.append(chain.run([{"caption": c} for c in raw])), n, args.repeat)
    kept = sum(1 for r in out[-1] if r["reason"] is None)
    rows.append(("whole text chain", rate, f"{n - kept} rejected ({(n - kept) / n:.2%})"))

    print(f"text filters on {n} captions from {args.data}, one core (target {TARGET:.0f}/s for the chain)")
    print(f"{'stage':<28} {'samples/s/core':>15} {'x target':>9}  note")
    for name, rate, note in rows:
        print(f"{name:<28} {rate:>15,.0f} {rate / TARGET:>8.1f}x  {note}")


if __name__ == "__main__":
    main()
