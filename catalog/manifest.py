"""Check a manifest.json against docs/formats.md before the catalog trusts it."""

from __future__ import annotations

from typing import Any

from catalog.errors import UserError

FORMAT = "lipforge.manifest/1"
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "dataset": str,
    "version": int,
    "parents": list,
    "created": str,
    "code_version": str,
    "config": dict,
    "sources": list,
    "funnel": dict,
    "shards": list,
    "samples": int,
    "schema": dict,
    "stats": dict,
    "preview": list,
}
_SHARD_FIELDS: dict[str, type] = {"path": str, "samples": int, "bytes": int, "sha256": str}
# Optional field `modality`: what a version's samples hold. "pair" (image + caption) is what a
# manifest without the field holds; "image" and "text" are unimodal versions, whose samples
# never have the member of the other modality (`ABSENT`).
VERSION_MODALITIES = ("pair", "image", "text")
ABSENT = {"pair": (), "image": ("txt",), "text": ("jpg",)}


def modality_of(manifest: dict[str, Any]) -> str:
    """The version's modality: its `modality` field, "pair" when the manifest has none."""
    return manifest.get("modality", "pair")


class ManifestError(UserError, ValueError):
    """A manifest is not valid lipforge.manifest/1; the message names the file and field."""


def check_manifest(
    manifest: Any, source: str, dataset: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """Return `manifest` if it is a valid lipforge.manifest/1 for (dataset, version), else raise."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"{source}: top level must be an object")
    for field, kind in _REQUIRED.items():
        if field not in manifest:
            raise ManifestError(f"{source}: field {field!r} is missing")
        if not isinstance(manifest[field], kind) or isinstance(manifest[field], bool):
            raise ManifestError(
                f"{source}: field {field!r} must be {getattr(kind, '__name__', kind)}, got {type(manifest[field]).__name__}"
            )
    if manifest["format"] != FORMAT:
        raise ManifestError(f"{source}: field 'format' is {manifest['format']!r}, expected {FORMAT!r}")
    if dataset is not None and manifest["dataset"] != dataset:
        raise ManifestError(f"{source}: field 'dataset' is {manifest['dataset']!r} but the file is under {dataset!r}")
    if version is not None and manifest["version"] != version:
        raise ManifestError(f"{source}: field 'version' is {manifest['version']} but the file is under v{version}")
    for i, shard in enumerate(manifest["shards"]):
        for field, kind in _SHARD_FIELDS.items():
            if not isinstance(shard, dict) or not isinstance(shard.get(field), kind):
                raise ManifestError(f"{source}: field 'shards[{i}].{field}' is missing or not {kind.__name__}")
        if shard["path"].startswith("/") or ".." in shard["path"].split("/"):
            raise ManifestError(
                f"{source}: field 'shards[{i}].path' {shard['path']!r} must stay inside the dataset directory"
            )
    modality = manifest.get("modality", "pair")
    if modality not in VERSION_MODALITIES:
        raise ManifestError(
            f"{source}: field 'modality' is {modality!r}, expected one of {', '.join(VERSION_MODALITIES)}"
        )
    for member in ABSENT[modality]:
        if member in manifest["schema"].get("keys", []):
            raise ManifestError(
                f"{source}: field 'schema.keys' lists {member!r} but a {modality}-only version has none"
            )
    funnel = manifest["funnel"]
    for field in ("in", "kept", "rejected", "stages"):
        if field not in funnel:
            raise ManifestError(f"{source}: field 'funnel.{field}' is missing")
    if sum(s["samples"] for s in manifest["shards"]) != manifest["samples"]:
        raise ManifestError(f"{source}: field 'samples' ({manifest['samples']}) is not the sum of shards[].samples")
    return manifest
