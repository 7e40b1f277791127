"""`python -m pipelines augment DATASET@VERSION CONFIG`: publish the view version of a dataset version.

CONFIG is a YAML file holding either an `augment:` section (e.g. the build config, whose
`root:` is used unless --root is given) or the AugmentConfig keys at top level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from augment.config import AugmentConfig
from catalog import versions
from catalog.cli import add_overrides
from catalog.config import ConfigError, apply_overrides, validate


def load_augment_config(path: str, overrides: list[str]) -> tuple[AugmentConfig, str | None]:
    """(AugmentConfig, root from the file or None); errors name the file and key."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    root = data.get("root") if "augment" in data else None
    section = data["augment"] if "augment" in data else data
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: key 'augment' must be a mapping")
    return validate(
        AugmentConfig, apply_overrides(section, overrides), path + (" [augment]" if "augment" in data else "")
    ), root


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("augment", help="precompute text and image views of a dataset version (new version)")
    p.add_argument("ref", metavar="DATASET@VERSION", help="e.g. demo@1 or demo@latest")
    p.add_argument(
        "config", metavar="CONFIG", help="YAML with an augment: section (or AugmentConfig keys at top level)"
    )
    p.add_argument(
        "--root", default=None, help="datasets root (local path or s3://); default: the config's root, else ./data"
    )
    add_overrides(p, "image.local_views.count=6")
    p.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of a local Ray (ignored when Ray is already running)"
    )
    return p


def main(args: argparse.Namespace) -> int:
    from pipelines.views.job import augment_version  # Ray loads only once the config is valid

    cfg, file_root = load_augment_config(args.config, args.overrides)
    root = args.root or file_root or "./data"
    name, version = versions.resolve(root, args.ref)
    new = augment_version(root, name, version, cfg, num_cpus=args.num_cpus)
    manifest = versions.load_manifest(root, f"{name}@{new}")
    print(
        f"augment: {name}@{version} -> {name}@{new}: {manifest['samples']} samples in {len(manifest['shards'])} shards"
    )
    for kind, stats in manifest["stats"]["views"].items():
        extra = ", ".join(
            f"{k} {v}"
            for k, v in sorted(stats.items())
            if k not in ("samples", "produced", "bytes", "bytes_per_sample")
        )
        print(
            f"  {kind}: {stats['produced']} members, {stats['bytes_per_sample']:.0f} bytes/sample"
            + (f" ({extra})" if extra else "")
        )
    return 0
