"""WebDataset shards (plain tar): the one writer and the one reader of lipforge.

- `write_shard`: samples in order -> one reproducible tar (no times, no owners), put in place whole;
- `iter_samples`: the streaming reader, `(key, {ext: bytes})` per sample in shard order, optionally
  only the members asked for (the build's publish, the augment job, the catalog and the trainer
  all read shards through it);
- `scan_members` / `scan_shard` + `read_member_from`: an offset scan (tar headers only, seeking
  past member data) and byte-range reads of single members, for the catalog's gallery.

A sample's members are consecutive tar entries named `KEY.EXT` (WebDataset convention: the
key is the name up to the first dot of its last path component, the extension is the rest,
e.g. `bt.spa.txt`), so the shards read the same with `tar`, `tarfile` and `webdataset`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import tarfile
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from catalog import storage
from catalog.errors import UserError

_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    """One tar entry of a sample: where its header and its data start, and its size."""

    sample: int  # position of the sample inside the shard (0-based)
    key: str
    ext: str  # member extension, e.g. "jpg", "g0.jpg", "bt.spa.txt"
    header: int  # byte offset of the tar header block
    offset: int  # byte offset of the member data
    size: int


class ShardError(UserError, ValueError):
    """A shard is missing, unreadable or not laid out as WebDataset samples."""


def split_name(name: str) -> tuple[str, str] | None:
    """'abc.bt.spa.txt' -> ('abc', 'bt.spa.txt'); None when the name has no extension."""
    m = _KEY_EXT.match(name)
    return (m.group(1), m.group(2)) if m else None


def scan_members(f: BinaryIO, source: str) -> Iterator[Member]:
    """Every member of the tar stream `f`, in order, grouped into samples by key."""
    sample, last_key = -1, None
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                parts = split_name(info.name)
                if parts is None:
                    raise ShardError(f"{source}: member {info.name!r} has no KEY.EXT name")
                key, ext = parts
                if key != last_key:
                    sample, last_key = sample + 1, key
                yield Member(sample, key, ext, info.offset, info.offset_data, info.size)
    except tarfile.TarError as exc:
        raise ShardError(f"{source}: not a readable tar shard ({exc})") from None


def scan_shard(uri: str) -> list[Member]:
    """All members of the shard at `uri` (raises ShardError naming the shard)."""
    if not storage.exists(uri):
        raise ShardError(f"{uri}: shard is missing")
    with storage.open_read(uri) as f:
        return list(scan_members(f, uri))


def sha256_of(uri: str) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of the object at `uri`, streamed."""
    digest, size = hashlib.sha256(), 0
    with storage.open_read(uri) as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_member_from(f: BinaryIO, uri: str, member: Member) -> bytes:
    """The data of `member`, read as one byte range of the already open shard `f`.

    The header block is read too and its name checked, so a shard replaced after indexing
    raises ShardError instead of returning another member's bytes.
    """
    f.seek(member.header)
    block = f.read(member.offset - member.header + member.size)
    expected = f"{member.key}.{member.ext}"
    name = block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    # A long name lives in an extra GNU/pax header block before the real one.
    extended = name.startswith("././@LongLink") or "PaxHeader" in name
    if len(block) != member.offset - member.header + member.size or not (extended or name == expected):
        raise ShardError(
            f"{uri}: member {expected!r} is not at byte {member.header}; "
            "the shard changed since it was indexed (run `python -m catalog reindex`)"
        )
    return block[member.offset - member.header :]


def wants(ext: str, members: Collection[str] | None) -> bool:
    """Whether member `ext` is selected by `members` (names or fnmatch patterns; None: all)."""
    if members is None:
        return True
    return ext in members or any(fnmatch.fnmatchcase(ext, p) for p in members)


def iter_samples(uri: str, members: Collection[str] | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    """`(key, {ext: bytes})` for every sample of the shard at `uri`, streamed in shard order.

    `members` selects what is read: member names (`jpg`, `g0.jpg`) or fnmatch patterns
    (`bt.*`); other members are skipped without being copied (a sample keeps its key even
    when none of its members is selected). None reads every member. A name that is not
    `KEY.EXT`, or bytes that are not a tar, raise ShardError naming the shard.
    """
    key: str | None = None
    found: dict[str, bytes] = {}
    try:
        with storage.open_read(uri) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                parts = split_name(info.name)
                if parts is None:
                    raise ShardError(f"{uri}: member {info.name!r} has no KEY.EXT name")
                if parts[0] != key:
                    if key is not None:
                        yield key, found
                    key, found = parts[0], {}
                if wants(parts[1], members):
                    data = tar.extractfile(info)
                    assert data is not None
                    found[parts[1]] = data.read()
    except tarfile.TarError as exc:
        raise ShardError(f"{uri}: not a readable tar shard ({exc})") from None
    except FileNotFoundError:
        raise ShardError(f"{uri}: shard is missing") from None
    if key is not None:
        yield key, found


def write_shard(uri: str, samples: Iterable[tuple[str, Iterable[tuple[str, bytes]]]]) -> dict[str, int | str]:
    """Write `(key, [(ext, bytes), ...])` samples, in order, as one tar shard at `uri`.

    Tar headers carry no time or owner, so the same samples give the same bytes. The tar is
    built in a local temporary file and put in place whole (catalog.storage), so a reader
    never sees half a shard. Returns the manifest entry's `samples`, `bytes`, `sha256`.
    """
    fd, tmp = tempfile.mkstemp(suffix=".tar")
    os.close(fd)
    count = 0
    try:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, members in samples:
                count += 1
                for ext, data in members:
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    tar.addfile(info, io.BytesIO(data))
        digest, size = sha256_of(tmp)
        storage.upload_file(tmp, uri)
    finally:
        os.unlink(tmp)
    return {"samples": count, "bytes": size, "sha256": digest}
