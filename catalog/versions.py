"""Find dataset versions under a root from their manifests (the source of truth).

A version directory without `manifest.json` is incomplete and invisible here.
"""

from __future__ import annotations

import re
from typing import Any

from catalog import storage
from catalog.errors import NotFound

_VERSION_DIR = re.compile(r"^v(\d+)$")


class VersionNotFound(NotFound):
    """A dataset or version does not exist (complete) under a root; the message says what does."""


def version_numbers(root: str, dataset: str) -> list[int]:
    """Complete versions of `dataset` under `root`, ascending."""
    base = storage.join(root, dataset)
    found = []
    for name in storage.listdir(base):
        m = _VERSION_DIR.match(name)
        if m and storage.exists(storage.join(base, name, "manifest.json")):
            found.append(int(m.group(1)))
    return sorted(found)


def parse_ref(ref: str) -> tuple[str, str]:
    """'demo@3' -> ('demo', '3'); 'demo' or 'demo@latest' -> ('demo', 'latest')."""
    name, _, ver = ref.partition("@")
    if not name:
        raise VersionNotFound(f"dataset reference {ref!r}: expected NAME[@VERSION], e.g. demo@3 or demo@latest")
    ver = ver or "latest"
    if ver != "latest" and not ver.lstrip("v").isdigit():
        raise VersionNotFound(f"dataset reference {ref!r}: version must be a number or 'latest'")
    return name, ver.lstrip("v")


def resolve(root: str, ref: str) -> tuple[str, int]:
    """'demo@latest' -> ('demo', newest complete version); raises naming what exists."""
    name, ver = parse_ref(ref)
    versions = version_numbers(root, name)
    if not versions:
        raise VersionNotFound(f"dataset {name!r}: no complete version under {root}")
    if ver == "latest":
        return name, versions[-1]
    if int(ver) not in versions:
        raise VersionNotFound(f"dataset {name!r}: no complete version {ver} under {root} (have {versions})")
    return name, int(ver)


def version_uri(root: str, dataset: str, version: int) -> str:
    return storage.join(root, dataset, f"v{version}")


def load_manifest(root: str, ref: str) -> dict[str, Any]:
    """The manifest of `ref` ('NAME@VER' or 'NAME@latest')."""
    name, version = resolve(root, ref)
    return storage.read_json(storage.join(version_uri(root, name, version), "manifest.json"))


def shard_uris(root: str, manifest: dict[str, Any]) -> list[str]:
    """Absolute URIs of a version's shards (paths in the manifest are relative to the dataset dir)."""
    base = storage.join(root, manifest["dataset"])
    return [storage.join(base, shard["path"]) for shard in manifest["shards"]]
