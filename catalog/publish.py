"""Describe finished shards and write a version's manifest.json (last) per docs/formats.md.

The single manifest writer. A build (or refresh, or augment) writes its shards, then calls
`publish_version`: it describes the shards (hashing and counting them unless the caller
already has their entries), derives the sample schema, statistics and preview (from the
shards, or from the caller's samples through the same `contents_of`), and writes
`stats.json` and then `manifest.json`, which makes the version visible. Shard paths are
relative to the dataset directory, so a version may list shards that live in an older
version's directory. View members are never guessed from names: the producer that writes
them declares them (`views=`), so a clean build's schema has none.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from catalog import storage
from catalog.manifest import FORMAT, check_manifest
from catalog.shards import ShardError, iter_samples, sha256_of
from catalog.stats import version_stats
from catalog.versions import version_uri

PREVIEW_SIZE = 32
MODALITIES = ("image", "text")
Views = Mapping[str, Iterable[str]]  # modality -> view member names, as their producer declares them


def describe_shard(dataset_uri: str, path: str) -> dict[str, Any]:
    """`{"path", "samples", "bytes", "sha256"}` of the shard at `path` (relative to the dataset dir)."""
    uri = storage.join(dataset_uri, path)
    if not storage.exists(uri):
        raise ShardError(f"{uri}: shard is missing")
    sha, size = sha256_of(uri)
    samples = sum(1 for _ in iter_samples(uri, members=()))
    return {"path": path, "samples": samples, "bytes": size, "sha256": sha}


def schema_of(keys: Iterable[str], views: Views | None = None) -> dict[str, Any]:
    """manifest["schema"]: `keys` = every member extension present (jpg, txt, json and any
    views), sorted; `views` = the view members by modality, exactly as their producer declares
    them (the augment job: each view kind's members). Without `views` there are none."""
    views = views or {}
    unknown = sorted(set(views) - set(MODALITIES))
    if unknown:
        raise ValueError(f"view modalities {unknown}: expected {', '.join(MODALITIES)}")
    declared = {m: sorted(set(views.get(m, ()))) for m in MODALITIES}
    return {
        "keys": sorted(set(keys).union(*declared.values())),
        "views": declared,
    }


def code_version() -> str:
    """lipforge's package version plus the git commit of the checkout when there is one."""
    try:
        version = metadata.version("lipforge")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git_commit()
    return f"{version}+{commit[:12]}" if commit else version


def _git_commit() -> str | None:
    for parent in pathlib.Path(__file__).resolve().parents:
        head = parent / ".git" / "HEAD"
        if head.is_file():
            ref = head.read_text().strip()
            if not ref.startswith("ref: "):
                return ref
            target = parent / ".git" / ref[5:]
            return target.read_text().strip() if target.is_file() else None
    return None


@dataclass(frozen=True)
class Contents:
    """What a manifest says about a version's samples: `schema`, `stats`, `preview`."""

    schema: dict[str, Any]
    stats: dict[str, Any]
    preview: list[str]


def contents_of(
    samples: Iterable[tuple[str, str | None, dict[str, Any], Iterable[str]]], views: Views | None = None
) -> Contents:
    """Contents from (key, caption or None when the sample has none, sample json, member
    extensions) per sample, in version order; `views`: the view members the producer
    declares (see `schema_of`)."""
    exts: set[str] = set()
    preview: list[str] = []

    def captions_and_meta() -> Iterator[tuple[str | None, dict[str, Any]]]:
        for key, caption, meta, members in samples:
            exts.update(members)
            if len(preview) < PREVIEW_SIZE:
                preview.append(key)
            yield caption, meta

    stats = version_stats(captions_and_meta())
    return Contents(schema_of(exts, views), stats, preview)


def scan_contents(dataset_uri: str, shard_paths: list[str], views: Views | None = None) -> Contents:
    """Contents read from the shards themselves (every member name; captions and sample json)."""

    def samples() -> Iterator[tuple[str, str | None, dict[str, Any], Iterable[str]]]:
        for path in shard_paths:
            for key, members in iter_samples(storage.join(dataset_uri, path)):
                meta = json.loads(members["json"]) if members.get("json") else {}
                caption = members["txt"].decode("utf-8") if "txt" in members else None
                yield key, caption, meta, members

    return contents_of(samples(), views)


def publish_version(
    root: str,
    dataset: str,
    version: int,
    shards: list[str | dict[str, Any]],
    *,
    funnel: dict[str, Any],
    config: dict[str, Any],
    sources: list[dict[str, Any]],
    parents: list[str] | None = None,
    code: str | None = None,
    contents: Contents | None = None,
    views: Views | None = None,
    modality: str = "pair",
) -> dict[str, Any]:
    """Write `stats.json` and then `manifest.json` of `{root}/{dataset}/v{version}/`; return the manifest.

    The one manifest writer (the build, refresh, the synthetic versions and the catalog's
    tests all publish through it). `shards` are paths relative to the dataset directory,
    which are hashed and counted here, or `{"path", "samples", "bytes", "sha256"}` entries
    the caller already has (the build hashes each tar as it writes it; a refresh carries
    its parent's entries forward unchanged). `contents` (schema, stats, preview) is read
    from the shards when not given; a caller that holds the samples' captions and json
    passes `contents_of(...)` instead, computed by the same code. `views` declares the view
    members by modality when the contents are read from the shards (see `schema_of`).
    `modality` is what the samples hold (`catalog.manifest.VERSION_MODALITIES`): "pair", or
    "image" / "text" for a unimodal version.
    """
    dataset_uri = storage.join(root, dataset)
    described = [s if isinstance(s, dict) else describe_shard(dataset_uri, s) for s in shards]
    if contents is None:
        contents = scan_contents(dataset_uri, [s["path"] for s in described], views)
    manifest = {
        "format": FORMAT,
        "dataset": dataset,
        "version": version,
        "modality": modality,
        "parents": list(parents or []),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code or code_version(),
        "config": config,
        "sources": sources,
        "funnel": funnel,
        "shards": [
            {"path": s["path"], "samples": s["samples"], "bytes": s["bytes"], "sha256": s["sha256"]} for s in described
        ],
        "samples": sum(s["samples"] for s in described),
        "schema": contents.schema,
        "stats": contents.stats,
        "preview": contents.preview,
    }
    base = version_uri(root, dataset, version)
    check_manifest(manifest, storage.join(base, "manifest.json"), dataset, version)
    storage.write_json(storage.join(base, "stats.json"), funnel)
    storage.write_json(storage.join(base, "manifest.json"), manifest)
    return manifest
