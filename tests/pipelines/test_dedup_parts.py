"""The partitioned de-duplication (map / reduce / gather / resolve) equals `representatives` exactly,
whatever the number of parts and buckets, on inputs with chains of near duplicates, repeated
pHashes, repeated bytes, repeated keys and carried (prior) images."""

from __future__ import annotations

import os
import random
import tempfile

import pyarrow as pa
import pytest

from pipelines.stages.dedup import NODE_COLUMNS, involved, reduce_bucket, representatives, resolve, scatter
from pipelines.stages.parts import groups_of, read_bucket, write_bucketed


def corpus(seed: int, n: int = 400):
    """Images in clusters: each cluster a random pHash with members a few bits away (chains whose
    ends are further apart than max_hamming), some exact copies, some repeated keys."""
    rng = random.Random(seed)
    keys, rows, shas, hashes = [], [], [], []
    while len(keys) < n:
        h = rng.getrandbits(64)
        for _ in range(rng.randint(1, 6)):
            h ^= sum(1 << b for b in rng.sample(range(64), rng.randint(0, 5)))  # a walk: a chain of neighbours
            copy = rng.random() < 0.2 and shas
            keys.append(rng.choice(keys) if keys and rng.random() < 0.05 else f"{rng.getrandbits(64):016x}")
            rows.append(len(rows))
            shas.append(rng.choice(shas) if copy else f"s{rng.getrandbits(40):x}")
            hashes.append(h)
    return keys[:n], rows[:n], shas[:n], hashes[:n]


def partitioned(keys, rows, shas, hashes, max_hamming, n_parts, buckets, prior=([], [], [])):
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "key": keys,
            "sha256": shas,
            "phash": [f"{h:016x}" for h in hashes],
        }
    ).select(NODE_COLUMNS)
    table = table.append_column("prior", pa.array([False] * len(rows)))
    pk, ps, ph = prior
    old = pa.table(
        {
            "row": pa.array([-1] * len(pk), pa.int64()),
            "key": pa.array(pk, pa.string()),
            "sha256": pa.array(ps, pa.string()),
            "phash": pa.array([f"{h:016x}" for h in ph], pa.string()),
            "prior": pa.array([True] * len(pk), pa.bool_()),
        }
    )
    size = -(-len(rows) // n_parts)
    parts = [table.slice(i, size) for i in range(0, len(rows), size)] + [old]
    with tempfile.TemporaryDirectory() as tmp:  # the build's map files: one per part, in bucket order
        maps = [os.path.join(tmp, f"g{g}.parquet") for g in range(len(parts))]
        for uri, part in zip(maps, parts):
            write_bucketed(uri, *scatter(part, buckets, max_hamming))
        reduced = [reduce_bucket(read_bucket(maps, b), max_hamming) for b in range(buckets)]
    repeated = pa.concat_tables([r for r, _ in reduced])
    edges = pa.concat_tables([e for _, e in reduced])
    nodes = pa.concat_tables([involved(p, repeated, edges) for p in parts])
    found = resolve(nodes, edges, max_hamming)
    out = dict(zip(found.column("row").to_pylist(), found.column("duplicate_of").to_pylist()))
    return [out.get(r) for r in rows], nodes.num_rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_hamming", [-1, 0, 3, 6, 10])
def test_partitioned_dedup_equals_the_sequential_rule(seed, max_hamming):
    keys, rows, shas, hashes = corpus(seed)
    expected = representatives(keys, rows, shas, hashes, max_hamming)
    assert sum(r is not None for r in expected) > 20  # the corpus has duplicates to find
    for n_parts, buckets in ((1, 1), (3, 5), (7, 64)):
        got, _ = partitioned(keys, rows, shas, hashes, max_hamming, n_parts, buckets)
        assert got == expected, (n_parts, buckets)


@pytest.mark.parametrize("seed", range(4))
def test_partitioned_dedup_against_prior_images(seed):
    keys, rows, shas, hashes = corpus(seed, 300)
    rng = random.Random(seed)
    picks = rng.sample(range(300), 30)  # carried images near some new ones, some with the same bytes
    prior = (
        [f"p{i:03d}" for i in range(30)],
        [shas[i] if rng.random() < 0.3 else f"old{i}" for i in picks],
        [hashes[i] ^ (1 << rng.randrange(64)) for i in picks],
    )
    expected = representatives(keys, rows, shas, hashes, 6, prior=prior)
    assert any(r is not None and r.startswith("p") for r in expected)
    got, _ = partitioned(keys, rows, shas, hashes, 6, 4, 9, prior=prior)
    assert got == expected


def test_only_images_with_a_duplicate_relation_reach_the_resolve_step():
    keys = [f"{i:016x}" for i in range(100)]
    hashes = [random.Random(i).getrandbits(64) for i in range(100)]  # far apart: no near pairs
    shas = [f"s{i}" for i in range(100)]
    shas[7] = shas[3]
    hashes[50] = hashes[40] ^ 0b11
    got, involved_rows = partitioned(keys, list(range(100)), shas, hashes, 6, 3, 4)
    assert involved_rows == 4
    assert got[7] == keys[3] and got[50] == keys[40]
    assert sum(r is not None for r in got) == 2


@pytest.mark.parametrize(
    ("n_parts", "rows", "max_rows"), [(1, 10, 100), (7, 70, 20), (40, 400_000, 50_000), (5, 0, 10)]
)
def test_groups_of_cover_every_part_once_in_order_near_the_row_target(n_parts, rows, max_rows):
    groups = groups_of(n_parts, rows, max_rows)
    assert [i for r in groups for i in r] == list(range(n_parts))
    mean = rows / n_parts
    assert all(len(r) * mean <= max(max_rows, mean) for r in groups)


def test_a_bucketed_file_gives_each_bucket_its_rows_in_order_from_its_own_row_groups(tmp_path):
    import pyarrow.parquet as pq

    rng = random.Random(3)
    buckets = [rng.randrange(9) for _ in range(500)]
    table = pa.table({"i": pa.array(range(500), pa.int64()), "v": pa.array([f"x{b}" for b in buckets])})
    uri = str(tmp_path / "m.parquet")
    write_bucketed(uri, table, buckets)
    meta = pq.ParquetFile(uri).metadata
    assert meta.num_row_groups == len(set(buckets))  # one row group per bucket that has rows
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(2).statistics
        assert stats.min == stats.max
    other = str(tmp_path / "n.parquet")
    write_bucketed(other, table.slice(0, 40), buckets[:40])
    for b in range(10):
        got = read_bucket([uri, other], b)
        want = [i for i, x in enumerate(buckets) if x == b] + [i for i, x in enumerate(buckets[:40]) if x == b]
        assert got.column("i").to_pylist() == want and got.column_names == ["i", "v"]
    empty = str(tmp_path / "e.parquet")
    write_bucketed(empty, table.slice(0, 0), [])
    assert read_bucket([empty], 0).num_rows == 0 and read_bucket([empty], 0).column_names == ["i", "v"]
