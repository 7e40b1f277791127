"""How fast `sample-web` writes a corpus, on one core, beside the floor of just drawing and
JPEG-encoding the same number of shape pictures (no mess, no pHash checks, no truth).

    python bench/sampleweb.py [--n 2000] [--seed 0]

Target: 2,000 rows well under a minute on one core.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import tempfile
import time

import numpy as np

from pipelines.sampleweb import generate
from pipelines.sampleweb.shapes import render, sample_scene


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # apertium runs as child processes
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def draw_only(n: int, seed: int) -> None:
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    for _ in range(n):
        scene = sample_scene(rng, rng.randint(256, 640), rng.randint(256, 640), rng.choice((1, 2, 3)))
        render(scene, np_rng).save(io.BytesIO(), "JPEG", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    t0, c0 = time.perf_counter(), _cpu()
    draw_only(args.n, args.seed)
    base_wall, base_cpu = time.perf_counter() - t0, _cpu() - c0

    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), _cpu()
        generate(out, args.n, args.seed)
        gen_wall, gen_cpu = time.perf_counter() - t0, _cpu() - c0

    print(f"{'one core, n=' + str(args.n):<34}{'wall s':>9}{'cpu s':>9}{'rows/s':>9}{'x floor':>9}")
    print(f"{'floor: draw + JPEG only':<34}{base_wall:>9.1f}{base_cpu:>9.1f}{args.n / base_wall:>9.0f}{1.0:>9.2f}")
    print(
        f"{'sample-web generate':<34}{gen_wall:>9.1f}{gen_cpu:>9.1f}{args.n / gen_wall:>9.0f}"
        f"{gen_wall / base_wall:>9.2f}"
    )


if __name__ == "__main__":
    main()
