"""Describe finished shards and write a version's manifest.json (last) per docs/formats.md.

The single manifest writer. A build (or refresh, or augment) writes its shards, then calls
`publish_version`: it describes the shards (hashing and counting them unless the caller
already has their entries), derives the sample schema, statistics and preview (from the
shards, or from the caller's samples through the same `contents_of`), and writes
`stats.json` and then `manifest.json`, which makes the version visible. Shard paths are
relative to the dataset directory, so a version may list shards that live in an older
version's directory.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import tarfile
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable, Iterator

from catalog.manifest import FORMAT, check_manifest
from catalog.shards import ShardError, sha256_of, split_name
from catalog.stats import version_stats
from catalog.versions import version_uri
from catalog import storage

PREVIEW_SIZE = 32
_IMAGE_VIEW = re.compile(r"^[gl]\d+\.jpg$")
_TEXT_VIEW = re.compile(r"^(eda\d+|bt\.[a-z]+)\.txt$")


def describe_shard(dataset_uri: str, path: str) -> dict[str, Any]:
    """`{"path", "samples", "bytes", "sha256"}` of the shard at `path` (relative to the dataset dir)."""
    uri = storage.join(dataset_uri, path)
    if not storage.exists(uri):
        raise ShardError(f"{uri}: shard is missing")
    sha, size = sha256_of(uri)
    samples = sum(1 for _ in iter_samples(uri))
    return {"path": path, "samples": samples, "bytes": size, "sha256": sha}


def iter_samples(uri: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) for the samples of a shard, streamed in order (text and json only)."""
    key, members = None, {}
    with storage.open_read(uri) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for info in tar:
            parts = split_name(info.name) if info.isfile() else None
            if parts is None:
                continue
            if parts[0] != key:
                if key is not None:
                    yield key, members
                key, members = parts[0], {}
            wanted = parts[1].endswith((".txt", ".json")) or parts[1] in ("txt", "json")
            members[parts[1]] = tar.extractfile(info).read() if wanted else b""
    if key is not None:
        yield key, members


def schema_of(exts: set[str]) -> dict[str, Any]:
    """manifest["schema"]: `keys` = every member extension present (jpg, txt, json and any
    views); `views` = only the view members among them (g0.jpg, l0.jpg, eda0.txt, bt.spa.txt),
    by modality. A clean build has no views."""
    return {
        "keys": sorted(exts),
        "views": {
            "image": sorted(e for e in exts if _IMAGE_VIEW.match(e)),
            "text": sorted(e for e in exts if _TEXT_VIEW.match(e)),
        },
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


def contents_of(samples: Iterable[tuple[str, str, dict[str, Any], Iterable[str]]]) -> Contents:
    """Contents from (key, caption, sample json, member extensions) per sample, in version order."""
    exts: set[str] = set()
    preview: list[str] = []

    def captions_and_meta() -> Iterator[tuple[str, dict[str, Any]]]:
        for key, caption, meta, members in samples:
            exts.update(members)
            if len(preview) < PREVIEW_SIZE:
                preview.append(key)
            yield caption, meta

    stats = version_stats(captions_and_meta())
    return Contents(schema_of(exts), stats, preview)


def scan_contents(dataset_uri: str, shard_paths: list[str]) -> Contents:
    """Contents read from the shards themselves (text and json members; images are skipped)."""

    def samples() -> Iterator[tuple[str, str, dict[str, Any], Iterable[str]]]:
        for path in shard_paths:
            for key, members in iter_samples(storage.join(dataset_uri, path)):
                meta = json.loads(members["json"]) if members.get("json") else {}
                yield key, members.get("txt", b"").decode("utf-8"), meta, members

    return contents_of(samples())


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
) -> dict[str, Any]:
    """Write `stats.json` and then `manifest.json` of `{root}/{dataset}/v{version}/`; return the manifest.

    The one manifest writer (the build, refresh, the synthetic versions and the catalog's
    tests all publish through it). `shards` are paths relative to the dataset directory,
    which are hashed and counted here, or `{"path", "samples", "bytes", "sha256"}` entries
    the caller already has (the build hashes each tar as it writes it; a refresh carries
    its parent's entries forward unchanged). `contents` (schema, stats, preview) is read
    from the shards when not given; a caller that holds the samples' captions and json
    passes `contents_of(...)` instead, computed by the same code.
    """
    dataset_uri = storage.join(root, dataset)
    described = [s if isinstance(s, dict) else describe_shard(dataset_uri, s) for s in shards]
    if contents is None:
        contents = scan_contents(dataset_uri, [s["path"] for s in described])
    manifest = {
        "format": FORMAT,
        "dataset": dataset,
        "version": version,
        "parents": list(parents or []),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": code or code_version(),
        "config": config,
        "sources": sources,
        "funnel": funnel,
        "shards": [{"path": s["path"], "samples": s["samples"], "bytes": s["bytes"], "sha256": s["sha256"]} for s in described],
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
