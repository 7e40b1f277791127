"""Throughput of each text filter and of the whole text chain, captions per CPU-second on one core.

    .venv/bin/python bench/filters.py [--data ../shared/realdata/flickr/captions_all.tsv] [--repeat 3]
                                      [--baseline REV]

Pins itself to one CPU (sched_setaffinity) and reports CPU time (`time.process_time`, which
other jobs on a shared machine disturb less) beside wall time. Each filter runs on every
caption (already cleaned) in isolation, in batches of `BATCH` rows; the English-word ratio
row is `EnglishWords.ratio` alone (what not_english and low_english_ratio each compute), the
person row is the gate plus tokenizer and NER where they are needed. The chain row is the
real stage's per-row part: `TextChain.run` on raw captions in batches of 512 rows, as
`pipelines.stages.text.TextActor` calls it (cleaning, person-name substitution, every check
scoring every row); the target is 15,000 captions/s/core.

`--baseline REV` also runs the chain of git revision REV (its `catalog` and `pipelines`
exported to a temporary directory, with a copy of the asset cache) and prints the two side
by side with their ratio. Each chain runs in a fresh child process, the two alternated
`--repeat` times: `cold` is a chain's first pass over the captions after `setup()` (empty
per-word caches), `warm` the best of its later passes (a long-running worker's state). On a
shared machine the load drifts between runs, so the ratio is also given as the median over
pairs of adjacent runs (each run against the baseline run just before it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # not bench/: bench/catalog.py would shadow the package

from catalog import assets  # noqa: E402
from pipelines.filters import FilterConfig, TextChain, normalize_caption  # noqa: E402
from pipelines.filters.english import english_words  # noqa: E402
from pipelines.filters.person import PersonNameSubstituter  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "realdata" / "flickr" / "captions_all.tsv"
TARGET = 15_000.0  # captions/s/core for the whole chain
BATCH = 512  # rows per chain call (pipelines.stages.text)

# Run in a child process with the tree to measure first on sys.path: captions on stdin,
# [cold, warm...] (cpu seconds, wall seconds) of whole passes on stdout.
CHAIN_CHILD = """
import json, os, sys, time
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
from pipelines.filters import TextChain
captions, batch, passes = json.load(sys.stdin)
chain = TextChain()
chain.setup()
batches = [[{"caption": c} for c in captions[i : i + batch]] for i in range(0, len(captions), batch)]
out = []
for _ in range(passes):
    cpu, wall = time.process_time(), time.perf_counter()
    for rows in batches:
        chain.run(rows)
    out.append((time.process_time() - cpu, time.perf_counter() - wall))
print(json.dumps(out))
"""


def load_captions(path: Path) -> list[str]:
    if not path.is_file():
        raise SystemExit(f"bench/filters.py: {path} not found (pass --data FILE.tsv with a 'caption' column)")
    with path.open(encoding="utf-8", newline="") as fp:
        reader = csv.DictReader(fp, delimiter="\t")
        if "caption" not in (reader.fieldnames or []):
            raise SystemExit(f"bench/filters.py: {path} has no 'caption' column (columns: {reader.fieldnames})")
        return [row["caption"] for row in reader]


def timed(fn: Callable[[], Any], n: int, repeat: int) -> tuple[float, float]:
    """(captions per CPU-second, captions per wall second), best of `repeat` runs."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    return n / cpu, n / wall


def batched(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def filter_rows(raw: list[str], repeat: int) -> list[tuple[str, float, float, str]]:
    """Each filter, the English-word ratio and the person names alone, in this process."""
    n = len(raw)
    config = FilterConfig()
    cleaned = [normalize_caption(c, config.max_caption_chars) for c in raw]
    rows = [("normalize_caption", *timed(lambda: [normalize_caption(c) for c in raw], n, repeat), "")]
    for f in TextChain(config).filters:
        f.setup()
        f.keep_batch([{"caption": c} for c in cleaned[:200]])  # warm caches the way a worker would
        result: list[Any] = []

        def run(f: Any = f, result: list[Any] = result) -> None:
            result[:] = [v for b in batched(cleaned) for v in f.keep_batch([{"caption": c} for c in b])]

        rates = timed(run, n, repeat)
        rows.append((f.name, *rates, f"{sum(1 for v in result if v is not True)} rejected"))
    words = english_words()
    words.setup()
    ratios: list[float] = []
    rates = timed(lambda: ratios.__setitem__(slice(None), [words.ratio(c) for c in cleaned]), n, repeat)
    rows.append(("English-word ratio", *rates, f"{sum(r < 0.8 for r in ratios)} below 0.8"))
    person = PersonNameSubstituter(config)
    person.setup()
    levels = person.gate_levels(cleaned)
    gated = sum(level > 0 for level in levels)
    to_ner = sum(level == 2 and person.ner_decides(person._nlp.make_doc(c)) for c, level in zip(cleaned, levels))
    subs: list[Any] = []
    rates = timed(
        lambda: subs.__setitem__(slice(None), [s for b in batched(cleaned) for s in person.substitute_batch(b)]),
        n,
        repeat,
    )
    note = f"{gated} gated ({gated / n:.1%}), {to_ner} to NER, {sum(s[1] for s in subs)} replaced"
    rows.append(("person names (gate + NER)", *rates, note))
    return rows


def export_tree(rev: str, into: Path) -> Path:
    """`catalog` and `pipelines` of git revision `rev` under `into`, with a copy of the asset cache."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "catalog", "pipelines"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    shutil.copytree(assets.cache_dir(), into / "cache")  # the old tree may re-derive assets: never in ours
    return tree


def run_chain(tree: Path, cache: Path | None, captions: list[str], passes: int) -> list[tuple[float, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if cache is not None:
        env["LIPFORGE_CACHE"] = str(cache)
    out = subprocess.run(
        [sys.executable, "-c", CHAIN_CHILD],
        input=json.dumps([captions, BATCH, passes]),
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench/filters.py: the chain of {tree} failed:\n{out.stderr[-3000:]}")
    return [tuple(p) for p in json.loads(out.stdout.strip().splitlines()[-1])]


def chain_rows(raw: list[str], repeat: int, baseline: str | None) -> None:
    n = len(raw)
    passes = 3  # one cold, two warm per child
    with tempfile.TemporaryDirectory(prefix="bench-filters-") as tmp:
        trees: dict[str, tuple[Path, Path | None]] = {"this tree": (REPO, None)}
        if baseline is not None:
            trees = {f"baseline {baseline}": (export_tree(baseline, Path(tmp)), Path(tmp) / "cache"), **trees}
        runs: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in trees}
        for _ in range(repeat):
            for name, (tree, cache) in trees.items():
                runs[name].append(run_chain(tree, cache, raw, passes))
    print(f"\nwhole text chain: {n} raw captions in batches of {BATCH}, one child per run, {repeat} runs alternated")
    print(
        f"{'chain':<24} {'cold /CPU-s':>12} {'warm /CPU-s':>12} {'warm median':>12} {'warm /s wall':>13} {'x target':>9}"
    )
    warm_best: dict[str, float] = {}
    for name, rs in runs.items():
        cold = max(n / r[0][0] for r in rs)
        warm = [n / p[0] for r in rs for p in r[1:]]
        wall = max(n / p[1] for r in rs for p in r[1:])
        warm_best[name] = max(warm)
        print(
            f"{name:<24} {cold:>12,.0f} {max(warm):>12,.0f} {statistics.median(warm):>12,.0f} {wall:>13,.0f}"
            f" {max(warm) / TARGET:>8.2f}x"
        )
    if baseline is not None:
        base, this = warm_best[f"baseline {baseline}"], warm_best["this tree"]
        # each run of this tree against the baseline run just before it (the load drifts less in between)
        pairs = [min(b[1:])[0] / min(t[1:])[0] for b, t in zip(runs[f"baseline {baseline}"], runs["this tree"])]
        print(f"{'this tree / baseline':<24} {'':>12} {this / base:>11.2f}x {statistics.median(pairs):>11.2f}x")
        print(
            f"  (best against best; median over the {repeat} pairs of adjacent runs: {', '.join(f'{r:.2f}' for r in pairs)})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", metavar="REV", help="also run the chain of this git revision, side by side")
    ap.add_argument("--chain-only", action="store_true", help="skip the per-filter rows")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    assets.prepare()
    raw = load_captions(args.data)
    n = len(raw)
    print(f"text filters on {n} captions from {args.data}, one core; best of {args.repeat}")
    if not args.chain_only:
        print(f"{'stage':<28} {'captions/CPU-s':>15} {'captions/s wall':>16}  note")
        for name, cpu, wall, note in filter_rows(raw, args.repeat):
            print(f"{name:<28} {cpu:>15,.0f} {wall:>16,.0f}  {note}")
    chain_rows(raw, args.repeat, args.baseline)


if __name__ == "__main__":
    main()
