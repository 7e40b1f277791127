"""Artifacts of a dataset version: files derived from a complete version (e.g. a visual
tokenizer's codebook learned over its images), stored beside it and listed in an index.

Layout (docs/formats.md, "Artifacts of a version"):

    {root}/{dataset}/v{N}/artifacts/{name}/{file}   the artifact's file
    {root}/{dataset}/v{N}/artifacts.json            {name: {"kind", "path", "sha256", "bytes", "created", "meta"}}

`path` is relative to `{root}/{dataset}/`, as shard paths in the manifest are. The file is
written first, then the index (each write atomic, see `catalog.storage`), so an index entry
always names a finished file. The manifest is immutable and is never rewritten: artifacts
can be added to a published version at any time. Recording a name again replaces its entry.
Works on local roots and s3:// alike; `artifact_path` hands back a local file (downloaded
once into the project cache, `catalog.assets.cache_dir()/artifacts/`, for a remote root).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from typing import Any

from catalog import assets, storage
from catalog.errors import NotFound, UserError
from catalog.shards import sha256_of
from catalog.versions import resolve, version_uri

INDEX_NAME = "artifacts.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ArtifactError(UserError, ValueError):
    """An artifact cannot be recorded or read (bad name, missing or changed file); the message says which."""


class ArtifactNotFound(NotFound):
    """A version has no artifact of that name; the message lists what it has."""


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ArtifactError(
            f"artifact name {name!r}: use lower-case letters, digits, '.', '_' or '-' (at most 64, e.g. visual-tokenizer)"
        )
    return name


def index_uri(root: str, ref: str) -> str:
    """`{root}/{dataset}/v{N}/artifacts.json` of a complete version (`ref`: NAME@VER or NAME@latest)."""
    dataset, version = resolve(root, ref)
    return storage.join(version_uri(root, dataset, version), INDEX_NAME)


def list_artifacts(root: str, ref: str) -> dict[str, dict[str, Any]]:
    """{name: entry} of the version's artifacts ({} when it has none)."""
    uri = index_uri(root, ref)
    if not storage.exists(uri):
        return {}
    found = storage.read_json(uri)
    if not isinstance(found, dict):
        raise ArtifactError(f"{uri}: expected an object of artifact entries, found {type(found).__name__}")
    return found


def record_artifact(
    root: str, ref: str, name: str, kind: str, local_file: str, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Copy `local_file` to `{version}/artifacts/{name}/{basename}` and list it in the index; return the entry."""
    check_name(name)
    if not os.path.isfile(local_file):
        raise ArtifactError(f"artifact {name!r}: {local_file} is not a file")
    dataset, version = resolve(root, ref)
    filename = os.path.basename(local_file)
    rel = f"v{version}/artifacts/{name}/{filename}"
    target = storage.join(root, dataset, rel)
    index = list_artifacts(root, f"{dataset}@{version}")
    old = index.get(name)
    storage.upload_file(local_file, target)
    entry = {
        "kind": kind,
        "path": rel,
        "sha256": sha256_of(local_file)[0],
        "bytes": os.path.getsize(local_file),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "meta": dict(meta or {}),
    }
    index[name] = entry
    storage.write_json(storage.join(version_uri(root, dataset, version), INDEX_NAME), index)
    if old and old.get("path") != rel:  # a replaced entry whose file had another name
        storage.remove(storage.join(root, dataset, old["path"]))
    return entry


def get_artifact(root: str, ref: str, name: str) -> dict[str, Any]:
    """The index entry of artifact `name` of `ref`; ArtifactNotFound lists the names it has."""
    found = list_artifacts(root, ref)
    if name not in found:
        dataset, version = resolve(root, ref)
        have = ", ".join(sorted(found)) or "none"
        raise ArtifactNotFound(f"{dataset}@{version} has no artifact {name!r} (it has: {have})")
    return found[name]


def artifact_uri(root: str, ref: str, name: str) -> str:
    """Where artifact `name`'s file lives (local path or s3:// URI)."""
    dataset, _ = resolve(root, ref)
    return storage.join(root, dataset, get_artifact(root, ref, name)["path"])


def artifact_path(root: str, ref: str, name: str) -> str:
    """A local file holding artifact `name` of `ref`, checked against its recorded sha256.

    Local roots: the file itself. s3:// roots: a copy in the project cache, downloaded once.
    """
    dataset, version = resolve(root, ref)
    entry = get_artifact(root, f"{dataset}@{version}", name)
    uri = storage.join(root, dataset, entry["path"])
    if storage.is_remote(uri):
        tag = hashlib.sha1(str(root).rstrip("/").encode()).hexdigest()[:16]
        local = os.path.join(str(assets.cache_dir()), "artifacts", tag, dataset, entry["path"])
        if os.path.isfile(local) and sha256_of(local)[0] == entry["sha256"]:
            return local
        if not storage.exists(uri):
            raise ArtifactError(f"artifact {name!r} of {dataset}@{version}: {uri} is missing")
        storage.write_bytes(local, storage.read_bytes(uri))
    else:
        local = uri
        if not os.path.isfile(local):
            raise ArtifactError(f"artifact {name!r} of {dataset}@{version}: {local} is missing")
    if sha256_of(local)[0] != entry["sha256"]:
        raise ArtifactError(
            f"artifact {name!r} of {dataset}@{version}: {uri} does not match its recorded sha256 "
            f"{entry['sha256'][:16]} (changed after it was recorded; record it again)"
        )
    return local
