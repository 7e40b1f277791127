"""`Catalog`: versions and samples of one root, through the index and the offset indexes.

Samples are addressed by their position in a version (0-based over its shards in manifest
order); a position maps to a shard through the index and to byte ranges through the
shard's offset index, so reading sample 999,999 reads a few kilobytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from catalog import storage
from catalog.index import CatalogIndex
from catalog.offsets import ShardOffsets
from catalog.shards import Member, read_member_from

_TEXT_LIMIT = 1 << 20


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives: its shard (path relative to the dataset dir) and members."""

    dataset: str
    version: int
    position: int
    key: str
    shard_path: str
    shard_uri: str
    members: dict[str, Member]


class Catalog:
    """Read-only access to the versions under `root` (local path or s3://bucket/prefix)."""

    def __init__(self, root: str, index_dir: str | None = None, max_age: float = 0.0) -> None:
        self.index = CatalogIndex(root, index_dir)
        self.root = self.index.root
        self.max_age = max_age

    def refresh(self) -> None:
        self.index.refresh(self.max_age)

    def resolve(self, ref: str) -> tuple[str, int]:
        self.refresh()
        return self.index.resolve(ref)

    def manifest(self, ref: str) -> dict[str, Any]:
        return self.index.manifest(*self.resolve(ref))

    def shard_uri(self, dataset: str, path: str) -> str:
        return storage.join(self.root, dataset, path)

    def _offsets(self, dataset: str, shard: dict[str, Any]) -> ShardOffsets:
        return ShardOffsets(self.index.dir, self.shard_uri(dataset, shard["path"]), shard["sha256"])

    def page(self, dataset: str, version: int, start: int, count: int) -> list[SampleRef]:
        """Samples start..start+count-1 of a version (fewer at the end)."""
        out: list[SampleRef] = []
        position = start
        while len(out) < count:
            shard = self.index.shard_for(dataset, version, position)
            if shard is None:
                break
            local = position - shard["first"]
            stop = min(shard["samples"], local + count - len(out))
            offsets = self._offsets(dataset, shard)
            for i, members in sorted(offsets.samples(local, stop).items()):
                out.append(
                    SampleRef(
                        dataset,
                        version,
                        shard["first"] + i,
                        members[0].key,
                        shard["path"],
                        offsets.shard_uri,
                        {m.ext: m for m in members},
                    )
                )
            position = shard["first"] + shard["samples"]
        return out

    def sample(self, dataset: str, version: int, position: int) -> SampleRef:
        found = self.page(dataset, version, position, 1)
        if not found or found[0].position != position:
            raise LookupError(f"{dataset}@{version}: no sample at position {position}")
        return found[0]

    def find_key(self, dataset: str, version: int, key: str) -> SampleRef:
        """The sample with `key` (searches the shards' offset indexes in order)."""
        for shard in self.index.shards(dataset, version):
            local = self._offsets(dataset, shard).position_of(key)
            if local is not None:
                return self.sample(dataset, version, shard["first"] + local)
        raise LookupError(f"{dataset}@{version}: no sample with key {key!r}")

    def keys(self, dataset: str, version: int) -> list[str]:
        return [k for shard in self.index.shards(dataset, version) for k in self._offsets(dataset, shard).keys()]

    def read(self, ref: SampleRef, ext: str) -> bytes:
        """The bytes of member `ext` of a sample (one byte-range read)."""
        if ext not in ref.members:
            raise LookupError(
                f"{ref.dataset}@{ref.version} sample {ref.key}: no member {ext!r} (has {', '.join(ref.members)})"
            )
        with storage.open_read(ref.shard_uri) as f:
            return read_member_from(f, ref.shard_uri, ref.members[ext])

    def describe(self, ref: SampleRef) -> dict[str, Any]:
        """Caption, text views, sample json and where each image member is (shard + member)."""
        texts: dict[str, str] = {}
        meta: Any = None
        with storage.open_read(ref.shard_uri) as f:
            for ext, member in ref.members.items():
                if ext.endswith("txt") and member.size <= _TEXT_LIMIT:
                    texts[ext] = read_member_from(f, ref.shard_uri, member).decode("utf-8", "replace")
                elif ext == "json" and member.size <= _TEXT_LIMIT:
                    raw = read_member_from(f, ref.shard_uri, member)
                    try:
                        meta = json.loads(raw)
                    except json.JSONDecodeError:
                        meta = raw.decode("utf-8", "replace")
        images = {
            ext: {"shard": ref.shard_uri, "member": f"{ref.key}.{ext}", "offset": m.offset, "bytes": m.size}
            for ext, m in ref.members.items()
            if ext.endswith(("jpg", "jpeg", "png", "webp"))
        }
        return {
            "dataset": ref.dataset,
            "version": ref.version,
            "position": ref.position,
            "key": ref.key,
            "shard": ref.shard_path,
            "caption": texts.pop("txt", None),
            "text_views": texts,
            "images": images,
            "json": meta,
        }
