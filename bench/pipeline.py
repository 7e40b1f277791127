"""Benchmark: the full build vs plain img2dataset on the same served sample corpus.

    python bench/pipeline.py --n 5000 [--data DIR]

Serves the sample web corpus (generated into DIR unless DIR already holds one of n rows),
then runs, side by side, each in a local Ray of its own started and stopped inside its
wall time (img2dataset's `distributor="ray"` needs one as much as the build does):
 (a) plain img2dataset (distributor="ray") over all rows with the build's download settings;
 (b) the full build (text, download, image, dedup, shard, publish).
Prints wall seconds, samples/s/core per stage, each stage's share of (b), and (b)/(a), also
with the Ray start-up and shutdown (measured in (a)) taken off both.
Targets (issue 14): (b) <= 1.5 x (a) from 5,000 rows up; text stage >= 300 samples/s/core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

# The repo root first: bench/augment.py and bench/catalog.py would shadow those packages.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from catalog.raysession import ray_session  # noqa: E402
from pipelines.sampleweb.corpus import generate  # noqa: E402
from pipelines.stages.config import BuildConfig  # noqa: E402
from pipelines.stages.download import img2dataset_limits  # noqa: E402
from pipelines.stages.pipeline import run_build  # noqa: E402
from pipelines.webserver import CorpusServer, free_port  # noqa: E402

SLOW_SECONDS = 2.0
TIMEOUT = 1


def corpus(data: Path, n: int) -> Path:
    meta = data / "corpus.json"
    if not (meta.exists() and json.loads(meta.read_text())["n"] == n):
        generate(data, n=n, seed=11, base_url=f"http://127.0.0.1:{free_port()}")
    return data


def baseline(urls: Path, out: Path, cfg: BuildConfig) -> tuple[float, float]:
    """img2dataset alone, same resize and checks as the build's download stage: (wall seconds
    with Ray's start and stop, seconds of those two)."""
    from img2dataset import download

    start = time.perf_counter()
    with ray_session(cfg.ray, str(out) + ".log"):
        started = time.perf_counter()
        download(
            url_list=str(urls),
            output_folder=str(out),
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            output_format="parquet",
            distributor="ray",
            image_size=cfg.download.image_size,
            resize_mode="keep_ratio",
            resize_only_if_bigger=cfg.download.resize_only_if_bigger,
            encode_quality=cfg.download.encode_quality,
            thread_count=cfg.download.thread_count,
            number_sample_per_shard=cfg.download.samples_per_shard,
            timeout=TIMEOUT,
            extract_exif=False,
            compute_hash="sha256",
            **img2dataset_limits(cfg.filter),
            enable_wandb=False,
        )
        downloaded = time.perf_counter()
    end = time.perf_counter()
    return end - start, (started - start) + (end - downloaded)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--data", type=Path, default=None, help="corpus directory (default: a temporary one)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    args = ap.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    data = corpus(args.data or tmp / "corpus", args.n)
    port = urlparse(json.loads((data / "corpus.json").read_text())["base_url"]).port
    cfg = BuildConfig.model_validate(
        {
            "dataset": "bench",
            "root": str(tmp / "root"),
            "source": {"urls": str(data / "urls.parquet")},
            "download": {"timeout": TIMEOUT, "samples_per_shard": 500},
            "ray": {"num_cpus": args.cpus},
        }
    )
    try:
        with CorpusServer(data, port=port, slow_seconds=SLOW_SECONDS):
            base, ray_fixed = baseline(data / "urls.parquet", tmp / "baseline", cfg)
            timings: dict[str, float] = {}
            start = time.perf_counter()
            manifest = run_build(cfg, timings=timings)
            total = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n, cores = args.n, args.cpus
    stages = {s["stage"]: s["in"] for s in manifest["funnel"]["stages"]}
    print(f"\nbench/pipeline.py: {n} rows, {cores} cores, kept {manifest['samples']}")
    print(f"{'run':<26} {'seconds':>9} {'samples/s/core':>15} {'share':>7}")
    print(f"{'(a) img2dataset alone':<26} {base:>9.1f} {n / base / cores:>15.1f}")
    print(f"{'(b) full build':<26} {total:>9.1f} {n / total / cores:>15.1f} {'100%':>7}")
    for stage, sec in timings.items():
        rows = stages.get(stage, n)
        print(f"{'    ' + stage + f' ({rows} in)':<26} {sec:>9.1f} {rows / sec / cores:>15.1f} {sec / total:>7.0%}")
    print(f"ratio (b)/(a): {total / base:.2f}  (target <= 1.5)")
    print(
        f"ratio without Ray's start and stop ({ray_fixed:.1f} s, taken off both): "
        f"{(total - ray_fixed) / (base - ray_fixed):.2f}"
    )
    text_rate = n / timings["text"] / cores
    print(f"text stage: {text_rate:.0f} samples/s/core incl. actor start-up (target >= 300)")


if __name__ == "__main__":
    main()
