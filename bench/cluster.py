"""Benchmark: what does running the build on a multi-node cluster cost on the same cores?

    python bench/cluster.py --rows 5000

Side by side in one run, over the same URL list (distinct generated JPEGs served by this
process on 127.0.0.1, as `bench/scale.py full` serves them) and the same config:
 - one node: `python -m pipelines build` with its own local Ray on every core;
 - three nodes: `infra/cluster.sh up` on this machine (a head that takes no work and one
   worker node per core, so the build has the same CPUs) and the build sent with
   `ray job submit --working-dir .`, the way a user runs it on a cluster.
Printed: wall seconds (process start to end: Ray's start, the job's upload and
scheduling included), rows per second, and the cluster's time over the one node's.
Target (issue: internet-scale builds): the cluster at most 10% slower. Both builds must
publish the same funnel, or the comparison is void and the script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

import yaml  # noqa: E402
from scale import _Images, write_source  # noqa: E402  (bench/scale.py: the same source and server)

from pipelines.webserver import free_port  # noqa: E402

BIN = Path(sys.executable).parent


def config(work: Path, root: Path, cpus: int | None) -> Path:
    cfg = {
        "dataset": "bench",
        "root": str(root),
        "source": {"urls": str(work / "urls.parquet")},
        "download": {"timeout": 5, "samples_per_shard": 1000, "image_size": 96},
    }
    if cpus:
        cfg["ray"] = {"num_cpus": cpus}
    path = root.parent / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def funnel(root: Path) -> dict:
    return json.loads((root / "bench" / "v1" / "manifest.json").read_text())["funnel"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])} ... failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=5000)
    args = p.parse_args()
    cpus = os.cpu_count() or 1
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    work = Path(tempfile.mkdtemp(prefix="lipforge-cluster-bench-"))
    state = tempfile.mkdtemp(prefix="lfcb-", dir="/tmp")  # short: Ray's socket paths live under it
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_source(args.rows, work, port)
        one = timed([sys.executable, "-m", "pipelines", "build", str(config(work, work / "one", cpus))], env)
        print(f"one node ({cpus} CPUs): {one:.1f} s", flush=True)

        cluster_env = {
            **env,
            "LIPFORGE_CLUSTER_DIR": state,
            "LIPFORGE_CLUSTER_PORT": str(free_port()),
            "LIPFORGE_CLUSTER_DASHBOARD_PORT": str(free_port()),
            "LIPFORGE_CLUSTER_WORKERS": str(cpus),
            "LIPFORGE_CLUSTER_HEAD_CPUS": "0",
            "LIPFORGE_CLUSTER_WORKER_CPUS": "1",
            "RAY_AUTH_MODE": "token",
        }
        up = subprocess.run(
            ["bash", "infra/cluster.sh", "up"], cwd=REPO, env=cluster_env, capture_output=True, text=True
        )
        if up.returncode != 0:
            sys.exit(f"cluster.sh up failed:\n{up.stdout}\n{up.stderr}")
        dashboard = f"http://127.0.0.1:{cluster_env['LIPFORGE_CLUSTER_DASHBOARD_PORT']}"
        submit = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--"]
        many = timed(
            [*submit, "python", "-m", "pipelines", "build", str(config(work, work / "many", None))], cluster_env
        )
        print(f"head + {cpus} worker nodes (1 CPU each), ray job submit: {many:.1f} s", flush=True)
    finally:
        subprocess.run(["bash", "infra/cluster.sh", "down"], cwd=REPO, env={**env, "LIPFORGE_CLUSTER_DIR": state})
        server.shutdown()
    same = funnel(work / "one") == funnel(work / "many")
    print(f"\nbuild of {args.rows} rows on {cpus} cores")
    print(f"{'':<28}{'wall s':>8}{'rows/s':>9}{'ratio':>7}")
    print(f"{'one node, local Ray':<28}{one:>8.1f}{args.rows / one:>9.1f}{1.0:>7.2f}")
    print(f"{f'{cpus + 1}-node cluster, ray job':<28}{many:>8.1f}{args.rows / many:>9.1f}{many / one:>7.2f}")
    print("same funnel: " + ("yes" if same else "NO: the comparison is void"))
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
