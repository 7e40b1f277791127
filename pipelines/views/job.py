"""`augment_version(root, dataset, version, cfg)`: precompute views for a whole version with Ray.

The parent's shards are transformed by a pool of Ray actors (one per worker: each prepares
the offline assets, then keeps its WordNet, translator and cache open across shards) into
`{root}/{dataset}/v{N+1}/shards/`, where N is the newest complete version. Shards are read
and written by `catalog.shards` (the one reader and writer); the views themselves are the
pure `augment.views` transform. kept.parquet and rejects.parquet are copied from the parent,
its funnel carried over, and the view members the configured kinds declare are written into
the manifest's schema (`schema.views`, by modality); the manifest is written last by
`catalog.publish`. A unimodal version (manifest `modality` "image" or "text") takes only
the view kinds of its modality (image: `global`, `local`; text: `eda`, `bt`) and its view
version keeps that modality. A sample's json keeps every field of the parent's (the build's,
including the columns of `source.keep_columns`); the views only add `views`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ray

from augment.config import AugmentConfig
from augment.views import Sample, ViewKind, build_kinds, declared_views, transform_samples
from catalog import assets, console, storage, versions
from catalog.errors import UserError
from catalog.manifest import modality_of
from catalog.publish import Contents, publish_version, schema_of
from catalog.raysession import RayConfig, ray_session
from catalog.shards import ShardError, iter_samples, write_shard
from pipelines.stages.config import mismatched_views, views_for
from pipelines.stages.shard import MEMBERS

COPIED = ("kept.parquet", "rejects.parquet")  # stats.json (the funnel) is written by publish_version
REQUIRED = MEMBERS  # members every input sample has, by the version's modality (docs/formats.md)


class ViewModalityError(UserError, ValueError):
    """The configured view kinds do not fit the version's modality; the message names them."""


def check_view_modality(ref: str, modality: str, cfg: AugmentConfig) -> None:
    """Raise unless every view kind of `cfg` fits a `modality` version (`ref` names it)."""
    wrong = mismatched_views(modality, cfg.views)
    if wrong:
        raise ViewModalityError(
            f"{ref} is {modality}-only: view kinds {', '.join(wrong)} (augment.views) do not fit it; "
            f"{modality}-only versions take {', '.join(views_for(modality))}"
        )


def read_samples(uri: str, modality: str = "pair") -> Iterator[Sample]:
    """The samples of the shard at `uri` in order, as `augment.views` takes them: all members
    (bytes, in tar order) under `members`, plus the decoded `jpg`, `txt` and `json` (None
    for the member a unimodal version's samples lack)."""
    for key, members in iter_samples(uri):
        missing = [m for m in REQUIRED[modality] if m not in members]
        if missing:
            raise ShardError(f"{uri}: sample {key!r} lacks member(s) {', '.join(missing)}")
        try:
            txt = members["txt"].decode("utf-8") if "txt" in members else None
            meta = json.loads(members["json"])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ShardError(f"{uri}: sample {key!r}: bad txt/json member: {exc}") from None
        yield {"__key__": key, "members": members, "jpg": members.get("jpg"), "txt": txt, "json": meta}


def transform_shard(in_uri: str, out_uri: str, kinds: list[ViewKind], modality: str = "pair") -> dict[str, Any]:
    """Read `in_uri`, add views, write `out_uri` atomically; return the manifest shard entry + stats."""
    before = {k.name: dict(k.stats) for k in kinds}
    samples = transform_samples(list(read_samples(in_uri, modality)), kinds)
    entry = write_shard(out_uri, ((s["__key__"], s["members"].items()) for s in samples))
    views = {}
    for k in kinds:
        delta = {n: v - before[k.name].get(n, 0) for n, v in k.stats.items()}
        delta["bytes_per_sample"] = delta.get("bytes", 0) / len(samples) if samples else 0.0
        views[k.name] = delta
    return {**entry, "views": views}


class ShardWorker:
    """Ray actor body: assets prepared and view kinds built once, then one shard per call."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        assets.prepare()  # a Ray job's uploaded working dir has no prepared cache yet
        self.kinds = build_kinds(AugmentConfig.model_validate(cfg))

    def run(self, in_uri: str, out_uri: str, modality: str = "pair") -> dict[str, Any]:
        return transform_shard(in_uri, out_uri, self.kinds, modality)

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


def _gather(refs: list[Any], samples: int) -> list[dict[str, Any]]:
    """The shard results in order, advancing a views bar (samples) as each shard finishes."""
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    with console.progress(total=samples, desc="views", unit="sample") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            results[index[done[0]]] = ray.get(done[0])
            bar.update(results[index[done[0]]]["samples"])
    return results


def augment_version(root: str, dataset: str, version: int, cfg: AugmentConfig, num_cpus: int | None = None) -> int:
    """Publish `{root}/{dataset}/v{N+1}/` = version `version` plus views; return N+1."""
    name, parent_version = versions.resolve(root, f"{dataset}@{version}")
    parent = storage.read_json(storage.join(versions.version_uri(root, name, parent_version), "manifest.json"))
    modality = modality_of(parent)
    check_view_modality(f"{name}@{parent_version}", modality, cfg)  # before Ray starts
    new_version = versions.version_numbers(root, name)[-1] + 1
    out = versions.version_uri(root, name, new_version)
    in_uris = versions.shard_uris(root, parent)

    with ray_session(RayConfig(num_cpus=num_cpus), console.job_log_path(root, name, "augment")) as cpus:
        workers = max(1, min(cfg.num_workers or cpus, len(in_uris)))
        actor = ray.remote(num_cpus=1)(ShardWorker)
        pool = [actor.remote(cfg.to_dict()) for _ in range(workers)]
        refs = []
        rel_paths = []
        for i, in_uri in enumerate(in_uris):
            rel = f"v{new_version}/shards/shard-{i:06d}.tar"
            rel_paths.append(rel)
            refs.append(pool[i % workers].run.remote(in_uri, storage.join(root, name, rel), modality))
        results = _gather(refs, parent["samples"])
        ray.get([w.close.remote() for w in pool])
        for w in pool:
            ray.kill(w)

    parent_dir = versions.version_uri(root, name, parent_version)
    for filename in COPIED:
        src = storage.join(parent_dir, filename)
        if storage.exists(src):
            storage.write_bytes(storage.join(out, filename), storage.read_bytes(src))
    shards = [
        {"path": rel, "samples": r["samples"], "bytes": r["bytes"], "sha256": r["sha256"]}
        for rel, r in zip(rel_paths, results)
    ]
    parent_views = parent["schema"].get("views", {})
    views = declared_views(cfg)
    views = {m: [*parent_views.get(m, []), *views[m]] for m in views}
    contents = Contents(
        schema=schema_of(parent["schema"]["keys"], views),
        stats={**parent.get("stats", {}), "views": merge_view_stats(results)},
        preview=parent.get("preview", []),
    )
    publish_version(
        root,
        name,
        new_version,
        shards,
        funnel=parent["funnel"],
        config={"augment": cfg.to_dict()},
        sources=parent["sources"],
        parents=[f"{name}@{parent_version}"],
        contents=contents,
        modality=modality,
    )
    return new_version
