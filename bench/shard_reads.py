"""Benchmark: how many raw download shards does each tar task read?

    python bench/shard_reads.py --rows 4000000

A tar task reads the `jpg` column of every raw shard (img2dataset's output, one per 1,000
text survivors of a part, consecutive rows) holding one of its samples, so the bytes the
shard stage reads are (raw shards read per tar) x (raw shard size). This runs the build's own
order code (`pipelines.stages.shard.window_fragments` over 10,000-row parts, each window
sorted as the shard-sort task sorts it) on synthetic kept rows, side by side:
 - baseline: one window over the whole input (`shard.shuffle_rows` >= rows), which is the
   global seeded-hash order the build used before windows;
 - the default `shard.shuffle_rows` (and any given with --windows).
Printed per order: tars, raw shards read per tar (mean, max), read amplification (bytes
read / bytes of the raw shards' images the tar holds, at equal image sizes) and the ratio to
the baseline. Rows pass the text stage with probability 0.9 and are kept with 0.87 (78%
overall, the sample corpus's funnel); no image is downloaded, nothing is timed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository, before bench/

from pipelines.stages.config import ShardConfig
from pipelines.stages.shard import window_fragments, windows_of
from pipelines.stages.source import PART_ROWS

RAW_ROWS = 1_000  # text survivors per raw shard (download.samples_per_shard's default)


def kept_rows(rows: int, seed: int) -> tuple[list[int], list[str], list[int]]:
    """(row, key, raw shard) of the kept rows: raw shards cut every RAW_ROWS survivors within each part."""
    rng = random.Random(seed)
    out_rows, keys, raws = [], [], []
    raw = -1
    for lo in range(0, rows, PART_ROWS):
        survivors = 0
        for r in range(lo, min(lo + PART_ROWS, rows)):
            if rng.random() >= 0.9:
                continue
            if survivors % RAW_ROWS == 0:
                raw += 1
            survivors += 1
            if rng.random() < 0.87:
                out_rows.append(r)
                keys.append(f"{rng.getrandbits(64):016x}")
                raws.append(raw)
    return out_rows, keys, raws


def reads_per_tar(
    rows: list[int], keys: list[str], raws: list[int], n: int, shuffle_rows: int, per_tar: int
) -> list[int]:
    kept = pa.table({"row": pa.array(rows, pa.int64()), "key": keys, "raw": pa.array(raws, pa.int64())})
    windows: dict[int, list[pa.Table]] = defaultdict(list)
    for lo in range(0, n, PART_ROWS):  # one assemble task per part
        part = kept.filter(pc.and_(pc.greater_equal(kept["row"], lo), pc.less(kept["row"], lo + PART_ROWS)))
        span = windows_of(lo, min(PART_ROWS, n - lo), shuffle_rows)
        for w, fragment in zip(span, window_fragments(part, 0, span, shuffle_rows), strict=True):
            windows[w].append(fragment)
    order: list[int] = []
    for w in sorted(windows):  # one shard-sort task per window
        t = pa.concat_tables(windows[w]).sort_by([("rank", "ascending"), ("row", "ascending")])
        order += t.column("raw").to_pylist()
    return [len(set(order[i : i + per_tar])) for i in range(0, len(order), per_tar)]


def main() -> None:
    default = ShardConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=4_000_000)
    p.add_argument("--windows", default=f"{default.shuffle_rows},100000", help="shuffle_rows values, comma-separated")
    p.add_argument("--per-tar", type=int, default=default.samples_per_shard)
    args = p.parse_args()
    rows, keys, raws = kept_rows(args.rows, 0)
    print(
        f"{args.rows:,} input rows, {len(rows):,} kept, {raws[-1] + 1:,} raw shards, {args.per_tar:,} samples per tar"
    )
    print(f"{'order':>34} {'tars':>6} {'raw shards/tar':>15} {'max':>6} {'amplification':>14} {'vs baseline':>12}")
    base = None
    for shuffle_rows in [args.rows, *(int(w) for w in args.windows.split(","))]:
        counts = reads_per_tar(rows, keys, raws, args.rows, shuffle_rows, args.per_tar)
        mean = sum(counts) / len(counts)
        holds = args.per_tar / (RAW_ROWS * 0.87)  # raw shards' worth of images in a full tar
        base = base or mean
        name = "baseline: one window (global hash)" if shuffle_rows >= args.rows else f"shuffle_rows {shuffle_rows:,}"
        print(
            f"{name:>34} {len(counts):>6} {mean:>15.1f} {max(counts):>6} {mean / holds:>13.1f}x {mean / base:>11.3f}x"
        )


if __name__ == "__main__":
    main()
