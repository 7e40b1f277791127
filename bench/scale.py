"""Benchmark: does the build's driver stay flat as the input grows?

    python bench/scale.py text --sizes 10000,100000,1000000
    python bench/scale.py full --sizes 5000,20000,100000

Each size runs in a fresh process (its own local Ray), side by side in one run, and the
table compares every size with the smallest:
 - `text`: a pair source of synthetic captions (English sentences about shapes, with some
   German, repeats and junk, as the sample corpus has) through the text stage only
   (`stop_after="filter"`): nothing is downloaded;
 - `full`: the whole build over URLs of a local HTTP server that draws a distinct JPEG
   for every URL (random blocks seeded by the URL), so every image is downloaded,
   decoded, hashed and de-duplicated.
Printed per size: the driver's peak RSS (`VmHWM` of the build process, its own high-water
mark since it started; Ray's own processes are not in it; not getrusage's `ru_maxrss`,
which a child keeps from the parent it was forked from, here the parent that wrote the
source list), its growth over the smallest size, wall seconds, and each
stage's rows per second per core (the stage's rows over its wall seconds x the CPUs Ray
was given) with its ratio to the smallest size. Targets (issue: internet-scale builds):
RSS growth <= 10% across the range; per-stage throughput per core >= 0.8 x the smallest's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The repo root first: bench/augment.py and bench/catalog.py would shadow those packages.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORDS = {
    "shape": ["circle", "square", "triangle", "star", "hexagon", "ring", "diamond", "heart"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"],
    "where": ["on a grey background", "next to a small square", "in the corner", "near the edge", "on a white wall"],
}
GERMAN = ["ein roter Kreis auf grauem Hintergrund", "zwei blaue Quadrate neben einem Stern"]
JUNK = ["IMG_2041.JPG", "12345", "click here", ""]


def captions(n: int, seed: int = 0) -> list[str]:
    """n synthetic captions: mostly English, a few German, junk and exact repeats."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice(GERMAN))
        elif r < 0.07:
            out.append(rng.choice(JUNK))
        elif r < 0.09 and out:
            out.append(out[rng.randrange(len(out))])
        else:
            n_items = rng.randint(1, 3)
            items = [f"a {rng.choice(WORDS['colour'])} {rng.choice(WORDS['shape'])}" for _ in range(n_items)]
            out.append(f"{' and '.join(items)} {rng.choice(WORDS['where'])}")
    return out


class _Images(BaseHTTPRequestHandler):
    """GET /N.jpg -> a distinct 96x96 JPEG drawn from N (8x8 blocks of seeded random colours)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        from PIL import Image

        try:
            n = int(self.path.strip("/").split(".")[0])
        except ValueError:
            self.send_error(404)
            return
        rng = random.Random(n)
        small = Image.new("RGB", (8, 8))
        small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(64)])
        buf = io.BytesIO()
        small.resize((96, 96), Image.NEAREST).save(buf, format="JPEG", quality=90)
        body = buf.getvalue()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def write_source(n: int, work: Path, port: int) -> None:
    """The URL list (written by the parent, so the measured process never holds it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls = pa.array([f"http://127.0.0.1:{port}/{i}.jpg" for i in range(n)], pa.string())
    pq.write_table(pa.table({"url": urls, "caption": captions(n)}), work / "urls.parquet", row_group_size=50_000)


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (`VmHWM` of /proc/self/status)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024


def child(mode: str, n: int, work: Path, port: int) -> dict:
    """One build of the `n` rows in `work`/urls.parquet in this process; returns its numbers."""
    from pipelines.stages.config import BuildConfig
    from pipelines.stages.pipeline import run_build

    server = None
    if mode == "full":  # URLs name port `port` (9, never fetched, for the text stage only)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Images)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = BuildConfig.model_validate(
        {
            "dataset": "scale",
            "root": str(work / "data"),
            "source": {"urls": str(work / "urls.parquet")},
            "download": {"timeout": 5, "samples_per_shard": 10_000, "image_size": 96},
            "shard": {"samples_per_shard": 10_000},
        }
    )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    manifest = run_build(cfg, log=lambda line: None, stop_after="filter" if mode == "text" else None, timings=timings)
    wall = time.perf_counter() - start
    if server is not None:
        server.shutdown()
    cpus = os.cpu_count() or 1  # the build's local Ray gets every core
    rows = {"text": n}
    if manifest is not None:
        stages = {s["stage"]: s for s in manifest["funnel"]["stages"]}
        rows.update({name: stages[name]["in"] for name in ("download", "image", "dedup", "shard")})
    return {
        "rows": n,
        "rss_mb": peak_rss_mb(),
        "wall": wall,
        "per_core": {s: rows.get(s, 0) / t / cpus for s, t in timings.items() if t > 0 and rows.get(s)},
        "cpus": cpus,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["text", "full"])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=9, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.mode, args.child, Path(args.work), args.port)))
        return
    from pipelines.webserver import free_port

    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="lipforge-scale-") as work:
            port = free_port() if args.mode == "full" else 9
            write_source(n, Path(work), port)
            cmd = [sys.executable, __file__, args.mode, "--child", str(n), "--work", work, "--port", str(port)]
            env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"size {n} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            results.append(json.loads(line[len("RESULT ") :]))
            r = results[-1]
            print(f"{n:>9} rows: driver peak RSS {r['rss_mb']:.0f} MiB, {r['wall']:.1f} s", flush=True)
    base = results[0]
    stages = [s for s in ("text", "download", "image", "dedup", "shard") if s in base["per_core"]]
    print(f"\n{args.mode} build on {base['cpus']} cores")
    head = f"{'rows':>9} {'RSS MiB':>8} {'growth':>7} {'wall s':>7}  " + "  ".join(
        f"{s + '/s/core':>16}" for s in stages
    )
    print(head)
    for r in results:
        growth = r["rss_mb"] / base["rss_mb"] - 1
        cells = [
            f"{r['per_core'].get(s, 0):>8.0f} ({r['per_core'].get(s, 0) / base['per_core'][s]:.2f}x)" for s in stages
        ]
        print(
            f"{r['rows']:>9} {r['rss_mb']:>8.0f} {growth:>+7.1%} {r['wall']:>7.1f}  "
            + "  ".join(f"{c:>16}" for c in cells)
        )


if __name__ == "__main__":
    main()
