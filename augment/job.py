"""`augment_version(root, dataset, version, cfg)`: precompute views for a whole version with Ray.

The parent's shards are transformed by a pool of Ray actors (one per worker: each keeps
its WordNet, translator and cache open across shards) into `{root}/{dataset}/v{N+1}/shards/`,
where N is the newest complete version. kept.parquet, rejects.parquet and stats.json
(funnel) are copied from the parent; manifest.json is written last (docs/formats.md).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from augment.config import AugmentConfig
from augment.shard import build_kinds, transform_shard
from catalog import versions
from pipelines import storage

COPIED = ("kept.parquet", "rejects.parquet", "stats.json")


class ShardWorker:
    """Ray actor body: view kinds built once, then one shard per call."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.kinds = build_kinds(AugmentConfig.model_validate(cfg))

    def run(self, in_uri: str, out_uri: str) -> dict[str, Any]:
        return transform_shard(in_uri, out_uri, self.kinds)

    def close(self) -> None:
        for kind in self.kinds:
            kind.close()


def merge_view_stats(shards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per view kind: summed counts over shards and bytes per sample over the version."""
    total: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for kind, counts in shard["views"].items():
            acc = total.setdefault(kind, {})
            for name, value in counts.items():
                if name != "bytes_per_sample":
                    acc[name] = acc.get(name, 0) + value
    for acc in total.values():
        acc["bytes_per_sample"] = acc.get("bytes", 0) / acc["samples"] if acc.get("samples") else 0.0
    return total


def view_schema(cfg: AugmentConfig) -> dict[str, list[str]]:
    """`schema.views`: member extensions per modality, source members first."""
    from augment.views import VIEWS

    schema: dict[str, list[str]] = {"image": ["jpg"], "text": ["txt"]}
    for name in cfg.views:
        kind = VIEWS.get(name)
        schema[kind.modality].extend(kind.members(cfg))
    return schema


def augment_version(root: str, dataset: str, version: int, cfg: AugmentConfig, num_cpus: int | None = None) -> int:
    """Publish `{root}/{dataset}/v{N+1}/` = version `version` plus views; return N+1."""
    import ray

    name, parent_version = versions.resolve(root, f"{dataset}@{version}")
    parent = storage.read_json(storage.join(versions.version_uri(root, name, parent_version), "manifest.json"))
    new_version = versions.version_numbers(root, name)[-1] + 1
    out = versions.version_uri(root, name, new_version)
    in_uris = versions.shard_uris(root, parent)

    started = False
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False)
        started = True
    try:
        workers = cfg.num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = max(1, min(workers, len(in_uris)))
        actor = ray.remote(num_cpus=1)(ShardWorker)
        pool = [actor.remote(cfg.to_dict()) for _ in range(workers)]
        refs = []
        rel_paths = []
        for i, in_uri in enumerate(in_uris):
            rel = f"v{new_version}/shards/shard-{i:06d}.tar"
            rel_paths.append(rel)
            refs.append(pool[i % workers].run.remote(in_uri, storage.join(root, name, rel)))
        results = ray.get(refs)
        ray.get([w.close.remote() for w in pool])
        for w in pool:
            ray.kill(w)
    finally:
        if started:
            ray.shutdown()

    parent_dir = versions.version_uri(root, name, parent_version)
    for filename in COPIED:
        src = storage.join(parent_dir, filename)
        if storage.exists(src):
            storage.write_bytes(storage.join(out, filename), storage.read_bytes(src))
    shards = [{"path": rel, "samples": r["samples"], "bytes": r["bytes"], "sha256": r["sha256"]} for rel, r in zip(rel_paths, results)]
    schema_views = view_schema(cfg)
    manifest = dict(parent)
    manifest.update(
        {
            "version": new_version,
            "parents": [f"{name}@{parent_version}"],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "code_version": _code_version(),
            "config": {"augment": cfg.to_dict()},
            "shards": shards,
            "samples": sum(s["samples"] for s in shards),
            "schema": {
                "keys": list(dict.fromkeys([*parent.get("schema", {}).get("keys", ["jpg", "txt", "json"]), *schema_views["image"][1:], *schema_views["text"][1:]])),
                "views": schema_views,
            },
            "stats": {**parent.get("stats", {}), "views": merge_view_stats(results)},
        }
    )
    storage.write_json(storage.join(out, "manifest.json"), manifest)
    return new_version


def _code_version() -> str:
    try:
        from pipelines.build.outputs import code_version

        return code_version()
    except ImportError:
        from importlib.metadata import version

        return version("lipforge")
