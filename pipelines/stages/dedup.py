"""Stage `dedup`: one representative per group of duplicate images (FILIP section 3.1 removes duplicates).

Two images are duplicates when their downloaded bytes have the same sha256, or their 64-bit
pHashes differ in at most `max_hamming` bits. Candidates are visited in ascending
(key, row) order and an image is kept only if no already-kept image duplicates it, so the
smallest key always survives and the result does not depend on download order.

Near-duplicate search uses multi-index hashing: split the 64 bits into `max_hamming + 1`
bands; two hashes within `max_hamming` bits agree exactly on at least one band
(pigeonhole), so only images sharing a band value are compared.

`dedup.enabled: false` (`pass_dedup`) keeps every image: for a source that lists one image
under several rows on purpose (an eval set with several captions per image).
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from pipelines.phash import hamming
from pipelines.stages.funnel import StageCount


def bands(max_hamming: int) -> list[tuple[int, int]]:
    """(shift, mask) of `max_hamming + 1` bit bands covering all 64 bits."""
    n = max_hamming + 1
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]


def duplicate_flags(
    keys: list[str],
    rows: list[int],
    sha256: list[str],
    phash: list[int],
    max_hamming: int,
    prior: tuple[list[str], list[int]] = ([], []),
) -> list[bool]:
    """True for every image that duplicates an earlier-kept one (in (key, row) order).

    `prior` = (sha256s, pHashes) of images kept before (a refresh's carried samples): they
    count as kept ahead of every candidate, so a new image duplicating one is rejected.
    """
    order = sorted(range(len(keys)), key=lambda i: (keys[i], rows[i]))
    seen_sha: set[str] = set()
    parts = bands(max_hamming) if max_hamming >= 0 else []
    tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in parts]
    kept_hashes: list[int] = []

    def keep(sha: str, h: int) -> None:
        seen_sha.add(sha)
        for (shift, mask), table in zip(parts, tables):
            table[(h >> shift) & mask].append(len(kept_hashes))
        kept_hashes.append(h)

    for sha, h in zip(*prior):
        keep(sha, h)
    dup = [False] * len(keys)
    for i in order:
        h = phash[i]
        if sha256[i] in seen_sha or any(
            hamming(h, kept_hashes[j]) <= max_hamming
            for (shift, mask), table in zip(parts, tables)
            for j in table.get((h >> shift) & mask, ())
        ):
            dup[i] = True
            continue
        keep(sha256[i], h)
    return dup


def run_dedup(images: pa.Table, max_hamming: int, prior: pa.Table | None = None) -> pa.Table:
    """`images`: (row, key, sha256, phash hex) of images that passed `image`; adds `reason`.

    `prior`: (sha256, phash hex) of images already kept (a refresh's carried samples).
    """
    before = (
        ([], [])
        if prior is None
        else (prior.column("sha256").to_pylist(), [int(h, 16) for h in prior.column("phash").to_pylist()])
    )
    flags = duplicate_flags(
        images.column("key").to_pylist(),
        images.column("row").to_pylist(),
        images.column("sha256").to_pylist(),
        [int(h, 16) for h in images.column("phash").to_pylist()],
        max_hamming,
        before,
    )
    return images.append_column("reason", pa.array(["duplicate_image" if d else None for d in flags], pa.string()))


def pass_dedup(images: pa.Table) -> pa.Table:
    """The dedup stage with `dedup.enabled: false`: every image passes (`reason` null)."""
    return images.append_column("reason", pa.nulls(images.num_rows, pa.string()))


def count_dedup(table: pa.Table) -> StageCount:
    return StageCount.of("dedup", table.num_rows, table.column("reason").to_pylist())
