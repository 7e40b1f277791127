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


def representatives(
    keys: list[str],
    rows: list[int],
    sha256: list[str],
    phash: list[int],
    max_hamming: int,
    prior: tuple[list[str], list[str], list[int]] = ([], [], []),
) -> list[str | None]:
    """For every image, the key of the earlier-kept image it duplicates (in (key, row) order), or None.

    The representative of an exact duplicate is the kept image with its sha256; of a near
    duplicate, the first-kept image within `max_hamming` bits. `prior` = (keys, sha256s,
    pHashes) of images kept before (a refresh's carried samples): they count as kept ahead
    of every candidate, so a new image duplicating one is rejected.
    """
    order = sorted(range(len(keys)), key=lambda i: (keys[i], rows[i]))
    by_sha: dict[str, str] = {}
    parts = bands(max_hamming) if max_hamming >= 0 else []
    tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in parts]
    kept_hashes: list[int] = []
    kept_keys: list[str] = []

    def keep(key: str, sha: str, h: int) -> None:
        by_sha.setdefault(sha, key)
        for (shift, mask), table in zip(parts, tables):
            table[(h >> shift) & mask].append(len(kept_hashes))
        kept_hashes.append(h)
        kept_keys.append(key)

    for key, sha, h in zip(*prior):
        keep(key, sha, h)
    out: list[str | None] = [None] * len(keys)
    for i in order:
        h = phash[i]
        rep = by_sha.get(sha256[i])
        if rep is None:
            near = [
                j
                for (shift, mask), table in zip(parts, tables)
                for j in table.get((h >> shift) & mask, ())
                if hamming(h, kept_hashes[j]) <= max_hamming
            ]
            rep = kept_keys[min(near)] if near else None
        if rep is None:
            keep(keys[i], sha256[i], h)
        else:
            out[i] = rep
    return out


def run_dedup(images: pa.Table, max_hamming: int, prior: pa.Table | None = None) -> pa.Table:
    """`images`: (row, key, sha256, phash hex) of images that passed `image`; adds `reason` and
    `duplicate_of` (the representative's key).

    `prior`: (key, sha256, phash hex) of images already kept (a refresh's carried samples).
    """
    before = (
        ([], [], [])
        if prior is None
        else (
            prior.column("key").to_pylist(),
            prior.column("sha256").to_pylist(),
            [int(h, 16) for h in prior.column("phash").to_pylist()],
        )
    )
    reps = representatives(
        images.column("key").to_pylist(),
        images.column("row").to_pylist(),
        images.column("sha256").to_pylist(),
        [int(h, 16) for h in images.column("phash").to_pylist()],
        max_hamming,
        before,
    )
    reasons = pa.array([None if r is None else "duplicate_image" for r in reps], pa.string())
    return images.append_column("reason", reasons).append_column("duplicate_of", pa.array(reps, pa.string()))


def pass_dedup(images: pa.Table) -> pa.Table:
    """The dedup stage with `dedup.enabled: false`: every image passes (`reason` null)."""
    nulls = pa.nulls(images.num_rows, pa.string())
    return images.append_column("reason", nulls).append_column("duplicate_of", nulls)


def count_dedup(table: pa.Table) -> StageCount:
    return StageCount.of("dedup", table.num_rows, table.column("reason").to_pylist())
