"""Connect to Ray: the configured cluster, the one in RAY_ADDRESS (e.g. under `ray job submit`), or a local one."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from pipelines.build.config import RayConfig


@contextlib.contextmanager
def ray_session(cfg: RayConfig) -> Iterator[int]:
    """Yield the cluster's CPU count; shut Ray down afterwards only if this call started it.

    A cluster started with `ray start` under Ray 2.60 may require RAY_AUTH_MODE=token (and
    its token) in the client's environment; that is the caller's environment, not config.
    """
    import ray

    started = False
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # inherited by local workers: no update check
    if not ray.is_initialized():
        address = cfg.address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
        if address:
            # workers of an existing cluster do not inherit this process's environment
            ray.init(address=address, log_to_driver=True, runtime_env={"env_vars": {"NO_ALBUMENTATIONS_UPDATE": "1"}})
        else:
            ray.init(num_cpus=cfg.num_cpus, include_dashboard=False)
        started = True
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if started:
            ray.shutdown()
