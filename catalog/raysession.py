"""The one way lipforge jobs connect to Ray: build, refresh, the augment job and training.

`ray_session(cfg, log_path)` connects to the configured cluster, the one in `RAY_ADDRESS`
(e.g. under `ray job submit`), or starts a local one, and shuts Ray down afterwards only if
it started it. Unless `--verbose`, Ray's own output (driver logs, worker logs, Ray Data
progress bars, core-worker errors) goes to `log_path` (see `catalog.console`), not to the
console. A cluster started with `ray start` under Ray 2.60 may require RAY_AUTH_MODE=token
(and its token) in the client's environment; that is the caller's environment, not config.

A local Ray spills objects to a folder of the job's own (`lipforge-spill-*` in the system
temp dir), removed when the job ends, never to a shared /tmp/ray folder that outlives it; a
cluster spills where its `ray start` says. Raw captions never enter the object store in the
first place (a text task reads them from its part file), so spilled blocks hold none.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Optional

import ray
from pydantic import Field

from catalog import console
from catalog.config import Config

# Inherited by local workers; cluster workers get it through the runtime env. albumentations
# (imported by img2dataset) would otherwise look for updates on the network.
WORKER_ENV = {"NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0"}


class RayConfig(Config):
    address: Optional[str] = None  # None: RAY_ADDRESS if set (then "auto"), else a local Ray
    num_cpus: Optional[int] = Field(None, gt=0)
    object_store_mb: Optional[int] = Field(None, ge=80)  # a local Ray's object store (default: Ray's, 30% of memory)


@contextlib.contextmanager
def ray_session(
    cfg: RayConfig | None = None, log_path: str | None = None, runtime_env: dict[str, Any] | None = None
) -> Iterator[int]:
    """Yield the cluster's CPU count (see the module docstring)."""
    cfg = cfg or RayConfig()
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            stack.enter_context(console.captured(log_path))
        started = False
        if not ray.is_initialized():
            env = dict(runtime_env or {})
            env["env_vars"] = {**WORKER_ENV, **env.get("env_vars", {})}
            address = cfg.address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
            quiet = not console.verbose()
            kwargs: dict[str, Any] = {"log_to_driver": not quiet, "runtime_env": env}
            if address:
                ray.init(address=address, **kwargs)
            else:
                # "local": a Ray of its own, even where `ray start` left a cluster on this
                # machine (a bare `ray.init()` would join that one instead)
                spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="lipforge-spill-"))
                spilling = {"type": "filesystem", "params": {"directory_path": spill}}
                if cfg.object_store_mb is not None:
                    kwargs["object_store_memory"] = cfg.object_store_mb << 20
                ray.init(
                    address="local",
                    num_cpus=cfg.num_cpus,
                    include_dashboard=False,
                    _system_config={"object_spilling_config": json.dumps(spilling)},
                    **kwargs,
                )
                if quiet:
                    print(f"lipforge: Ray spills objects to {spill} (removed at the end)", file=sys.stderr, flush=True)
            started = True
            if quiet:  # into the job's log: where the workers' own logs are
                print(f"lipforge: Ray worker logs are under {_session_logs()}", file=sys.stderr, flush=True)
        _quiet_ray_data(not console.verbose())
        try:
            yield max(1, int(ray.cluster_resources().get("CPU", 1)))
        finally:
            if started:
                ray.shutdown()


def _session_logs() -> str:
    """The Ray session's log folder on this node (worker stdout/stderr live there)."""
    try:
        return os.path.join(ray._private.worker._global_node.get_session_dir_path(), "logs")
    except AttributeError:  # no local node object (e.g. a Ray client connection)
        return "the Ray session's logs folder (/tmp/ray/session_latest/logs on the head node)"


def _quiet_ray_data(quiet: bool) -> None:
    """Ray Data's own progress bars would draw between lipforge's; its stage logs go to the log file."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = not quiet
    ctx.print_on_execution_start = not quiet
