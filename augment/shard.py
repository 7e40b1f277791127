"""The shard transform: one input WebDataset shard -> the same samples plus their views.

Input members per docs/formats.md (`KEY.jpg`, `KEY.txt`, `KEY.json`); output adds the
members of every configured view kind and a `views` object (recipes) inside each json.
Returns per-shard stats per view kind: samples, produced members, bytes (and, for `bt`,
counts of ok/identical/empty/lost_token/cached).
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, Iterator

from augment.config import AugmentConfig
from augment.views import VIEWS, Sample, ViewKind
from catalog.shards import ShardError, split_name, write_shard
from catalog import storage

REQUIRED = ("jpg", "txt", "json")


def read_samples(data: bytes, where: str) -> Iterator[Sample]:
    """Samples of a tar shard in order, each with all its members (bytes) under `members`."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError as exc:
        raise ShardError(f"{where}: not a tar shard: {exc}") from None
    current: Sample | None = None
    with tar:
        for info in tar:
            if not info.isfile():
                continue
            parts = split_name(info.name)
            if parts is None:
                raise ShardError(f"{where}: member {info.name!r} has no extension (expected KEY.EXT)")
            key, ext = parts
            if current is None or current["__key__"] != key:
                if current is not None:
                    yield _complete(current, where)
                current = {"__key__": key, "members": {}}
            f = tar.extractfile(info)
            assert f is not None
            current["members"][ext] = f.read()
    if current is not None:
        yield _complete(current, where)


def _complete(sample: Sample, where: str) -> Sample:
    missing = [m for m in REQUIRED if m not in sample["members"]]
    if missing:
        raise ShardError(f"{where}: sample {sample['__key__']!r} lacks member(s) {', '.join(missing)}")
    sample["jpg"] = sample["members"]["jpg"]
    try:
        sample["txt"] = sample["members"]["txt"].decode("utf-8")
        sample["json"] = json.loads(sample["members"]["json"])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{where}: sample {sample['__key__']!r}: bad txt/json member: {exc}") from None
    return sample


def build_kinds(cfg: AugmentConfig) -> list[ViewKind]:
    return [VIEWS.get(name)(cfg) for name in cfg.views]


def transform_samples(samples: list[Sample], kinds: list[ViewKind]) -> list[Sample]:
    """Add every kind's members and recipes to `samples` (in place) and return them."""
    for kind in kinds:
        for sample, (members, recipes) in zip(samples, kind.make(samples), strict=True):
            sample["members"].update(members)
            sample["json"].setdefault("views", {}).update(recipes)
    for sample in samples:
        sample["members"]["json"] = json.dumps(sample["json"], sort_keys=True, ensure_ascii=False).encode("utf-8")
        sample.pop("_image", None)
    return samples


def transform_shard(in_uri: str, out_uri: str, kinds: list[ViewKind]) -> dict[str, Any]:
    """Read `in_uri`, add views, write `out_uri` atomically; return the manifest shard entry + stats."""
    before = {k.name: dict(k.stats) for k in kinds}
    samples = transform_samples(list(read_samples(storage.read_bytes(in_uri), in_uri)), kinds)
    entry = write_shard(out_uri, ((s["__key__"], s["members"].items()) for s in samples))
    views = {}
    for k in kinds:
        delta = {n: v - before[k.name].get(n, 0) for n, v in k.stats.items()}
        delta["bytes_per_sample"] = delta.get("bytes", 0) / len(samples) if samples else 0.0
        views[k.name] = delta
    return {**entry, "views": views}
