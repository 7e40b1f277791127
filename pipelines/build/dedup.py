"""Stage `dedup`: one representative per group of duplicate images (FILIP section 3.1 removes duplicates).

Two images are duplicates when their downloaded bytes have the same sha256, or their 64-bit
pHashes differ in at most `max_hamming` bits. Candidates are visited in ascending
(key, row) order and an image is kept only if no already-kept image duplicates it, so the
smallest key always survives and the result does not depend on download order.

Near-duplicate search uses multi-index hashing: split the 64 bits into `max_hamming + 1`
bands; two hashes within `max_hamming` bits agree exactly on at least one band
(pigeonhole), so only images sharing a band value are compared.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from pipelines.build.funnel import StageCount
from pipelines.phash import hamming


def bands(max_hamming: int) -> list[tuple[int, int]]:
    """(shift, mask) of `max_hamming + 1` bit bands covering all 64 bits."""
    n = max_hamming + 1
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]


def duplicate_flags(keys: list[str], rows: list[int], sha256: list[str], phash: list[int], max_hamming: int) -> list[bool]:
    """True for every image that duplicates an earlier-kept one (in (key, row) order)."""
    order = sorted(range(len(keys)), key=lambda i: (keys[i], rows[i]))
    seen_sha: set[str] = set()
    parts = bands(max_hamming) if max_hamming >= 0 else []
    tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in parts]
    dup = [False] * len(keys)
    for i in order:
        if sha256[i] in seen_sha:
            dup[i] = True
            continue
        h = phash[i]
        near = any(
            hamming(h, phash[j]) <= max_hamming
            for (shift, mask), table in zip(parts, tables)
            for j in table.get((h >> shift) & mask, ())
        )
        if near:
            dup[i] = True
            continue
        seen_sha.add(sha256[i])
        for (shift, mask), table in zip(parts, tables):
            table[(h >> shift) & mask].append(i)
    return dup


def run_dedup(images: pa.Table, max_hamming: int) -> pa.Table:
    """`images`: (row, key, sha256, phash hex) of images that passed `image`; adds `reason`."""
    flags = duplicate_flags(
        images.column("key").to_pylist(),
        images.column("row").to_pylist(),
        images.column("sha256").to_pylist(),
        [int(h, 16) for h in images.column("phash").to_pylist()],
        max_hamming,
    )
    return images.append_column("reason", pa.array(["duplicate_image" if d else None for d in flags], pa.string()))


def count_dedup(table: pa.Table) -> StageCount:
    return StageCount.of("dedup", table.num_rows, table.column("reason").to_pylist())
