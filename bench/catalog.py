"""Catalog latency on a big root: 1,000 versions plus one 1,000,000-sample version.

Generates (under bench/out/catalog/ unless --out) synthetic manifests for 1,000 small
versions and a 1M-sample version whose 1,000 shard entries reference 4 real WebDataset
shards (1,000 small samples each, with views) many times, so offset indexes and byte-range
reads are real. Serves it with `python -m catalog serve` and prints the median latency of
`list` (CLI path, in process), the dataset list page, the version page of the 1M version
and a deep gallery page, next to a baseline without the index (read every manifest; scan
the holding shard's tar from its start). Target: every median under 200 ms.

    .venv/bin/python bench/catalog.py [--out DIR] [--repeat 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from catalog import storage  # noqa: E402
from catalog.index import CatalogIndex  # noqa: E402
from catalog.keys import sample_key  # noqa: E402
from catalog.publish import describe_shard  # noqa: E402
from catalog.shards import write_shard  # noqa: E402
from catalog.stats import version_stats  # noqa: E402
from catalog.synthetic import funnel_for, make_sample  # noqa: E402
from pipelines.webserver import free_port  # noqa: E402

BIG, BIG_SAMPLES, REAL_SHARDS, PER_SHARD = "big", 1_000_000, 4, 1000
SMALL_DATASETS, SMALL_VERSIONS = 10, 100
PER_PAGE = 24


def manifest(
    dataset: str, version: int, shards: list[dict], parents: list[str], funnel: dict, stats: dict, schema: dict
) -> dict:
    return {
        "format": "lipforge.manifest/1",
        "dataset": dataset,
        "version": version,
        "parents": parents,
        "created": "2026-01-01T00:00:00+00:00",
        "code_version": "bench",
        "config": {"bench": True},
        "sources": [{"uri": f"bench://{dataset}", "rows": funnel["in"], "sha256": "0" * 64}],
        "funnel": funnel,
        "shards": shards,
        "samples": sum(s["samples"] for s in shards),
        "schema": schema,
        "stats": stats,
        "preview": [],
    }


def generate(root: str) -> None:
    rng = random.Random(0)
    paths = []
    for i in range(REAL_SHARDS):
        samples = []
        for j in range(PER_SHARD):
            url = f"http://bench/{i}/{j}.jpg"
            samples.append(
                (
                    sample_key(url),
                    make_sample(url, " ".join(rng.choices("a dog cat on the red grass".split(), k=8)), rng).items(),
                )
            )
        path = f"v1/shards/shard-{i:06d}.tar"
        write_shard(os.path.join(root, BIG, path), samples)
        paths.append(path)
    real = [describe_shard(os.path.join(root, BIG), p) for p in paths]
    shards = [real[k % REAL_SHARDS] for k in range(BIG_SAMPLES // PER_SHARD)]
    schema = {
        "keys": ["bt.spa.txt", "eda0.txt", "eda1.txt", "g0.jpg", "g1.jpg", "jpg", "json", "l0.jpg", "l1.jpg", "txt"],
        "views": {"image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg"], "text": ["bt.spa.txt", "eda0.txt", "eda1.txt"]},
    }
    stats = version_stats(("a dog on the grass", {"width": 300, "height": 200, "lang_score": 0.9}) for _ in range(1000))
    rejected = {
        "empty_caption": 20_000,
        "not_english": 150_000,
        "download_failed": 90_000,
        "image_too_small": 40_000,
        "duplicate_image": 30_000,
    }
    storage.write_json(
        os.path.join(root, BIG, "v1", "manifest.json"),
        manifest(BIG, 1, shards, [], funnel_for(BIG_SAMPLES, rejected), stats, schema),
    )
    for d in range(SMALL_DATASETS):
        for v in range(1, SMALL_VERSIONS + 1):
            name = f"ds{d:02d}"
            small = [dict(real[0])]
            m = manifest(
                name,
                v,
                small,
                [f"{name}@{v - 1}"] if v > 1 else [],
                funnel_for(PER_SHARD, {"not_english": v}),
                stats,
                schema,
            )
            storage.write_json(os.path.join(root, name, f"v{v}", "manifest.json"), m)


def timed(fn, repeat: int) -> tuple[float, float]:
    """(first call ms, median ms of the next `repeat` calls)."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return first, statistics.median(runs)


def http_get(port: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")


def baseline_list(root: str) -> None:
    """No index: open every manifest."""
    for name in sorted(os.listdir(root)):
        if name.startswith("."):
            continue
        for v in sorted(os.listdir(os.path.join(root, name))):
            path = os.path.join(root, name, v, "manifest.json")
            if os.path.exists(path):
                json.loads(open(path, "rb").read())


def baseline_gallery(root: str, position: int) -> None:
    """No offset index: read the manifest, walk the holding shard's tar from its start to the page."""
    m = json.loads(open(os.path.join(root, BIG, "v1", "manifest.json"), "rb").read())
    shard = m["shards"][position // PER_SHARD]
    local, seen, key = position % PER_SHARD, -1, None
    with tarfile.open(os.path.join(root, BIG, shard["path"])) as tar:
        for info in tar:
            k = info.name.split(".", 1)[0]
            if k != key:
                seen, key = seen + 1, k
            if seen >= local + PER_PAGE:
                break
            if seen >= local and info.name.endswith("txt"):
                tar.extractfile(info).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "catalog"))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    root = args.out
    if not os.path.exists(os.path.join(root, BIG, "v1", "manifest.json")):
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        generate(root)
        print(
            f"generated {SMALL_DATASETS * SMALL_VERSIONS + 1} versions under {root} in {time.perf_counter() - t0:.1f} s"
        )
    shutil.rmtree(os.path.join(root, ".catalog"), ignore_errors=True)
    index = CatalogIndex(root)
    t0 = time.perf_counter()
    index.refresh()
    print(f"index built from manifests in {(time.perf_counter() - t0) * 1000:.0f} ms")

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    proc = subprocess.Popen([sys.executable, "-m", "catalog", "--root", root, "serve", "--port", str(port)], env=env)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        deep = 777_777 // PER_PAGE
        position = deep * PER_PAGE
        cases = [
            ("list (CLI, refresh + query)", lambda: (index.refresh(), index.versions()), lambda: baseline_list(root)),
            ("dataset list page  GET /", lambda: http_get(port, "/"), lambda: baseline_list(root)),
            (f"version page {BIG}@1 (1M samples)", lambda: http_get(port, f"/d/{BIG}/1"), None),
            (
                f"gallery page {deep} ({PER_PAGE} samples)",
                lambda: http_get(port, f"/d/{BIG}/1/samples?page={deep}"),
                lambda: baseline_gallery(root, position),
            ),
            (
                "one gallery image",
                lambda: http_get(port, f"/d/{BIG}/1/sample/{position}/jpg"),
                lambda: baseline_gallery(root, position),
            ),
        ]
        print(f"\n{'case':40} {'first ms':>9} {'median ms':>10} {'baseline ms':>12} {'ratio':>7}  target <200 ms")
        for name, fn, base in cases:
            first, median = timed(fn, args.repeat)
            verdict = "ok" if median < 200 else "SLOW"
            if base is None:  # the page has no index-free counterpart worth timing
                print(f"{name:40} {first:9.1f} {median:10.1f} {'-':>12} {'-':>7}  {verdict}")
                continue
            _, base_median = timed(base, max(3, args.repeat // 4))
            print(f"{name:40} {first:9.1f} {median:10.1f} {base_median:12.1f} {base_median / median:6.1f}x  {verdict}")
        print("\nbaseline: no index (every manifest read; tar walked from the holding shard's start; page text only).")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
