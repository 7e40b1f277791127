"""The repeated-caption count as tasks (`pipelines.stages.text.apply_repeats`) equals a Counter over
the whole input, for any number of map groups and hash buckets, with rows counted but not decided
(a refresh's old rows); each round writes one file per task (groups, then buckets), never one per
(group, bucket). Real local Ray."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pytest

from catalog.parquet import read_parquet, write_parquet
from pipelines.filters.config import FilterConfig
from pipelines.stages import text
from pipelines.stages.workdir import open_workdir

pytestmark = pytest.mark.slow  # a real local Ray

PART_ROWS = 29


@pytest.mark.parametrize(("map_rows", "per_bucket"), [(10_000, 10_000), (60, 45), (29, 7)])
def test_repeat_counts_equal_a_counter_over_the_whole_input(local_ray, tmp_path, monkeypatch, map_rows, per_bucket):
    monkeypatch.setattr(text, "MAP_ROWS", map_rows)
    monkeypatch.setattr(text, "ROWS_PER_BUCKET", per_bucket)
    rng = random.Random(map_rows)
    hashes = [f"h{rng.randrange(60)}" for _ in range(300)]
    old = [f"h{rng.randrange(90)}" for _ in range(50)]  # counted, not decided
    wd = open_workdir(str(tmp_path / "root"), "d", {"m": map_rows}, log=lambda line: None)
    parts = []
    for i in range(0, len(hashes), PART_ROWS):
        chunk = hashes[i : i + PART_ROWS]
        table = {name: pa.nulls(len(chunk), field.type) for name, field in zip(text.SCHEMA.names, text.SCHEMA)}
        table.update(row=pa.array(range(i, i + len(chunk)), pa.int64()), norm_hash=pa.array(chunk, pa.string()))
        table["caption"] = pa.array(["a caption"] * len(chunk), pa.string())
        parts.append(wd.path("text", f"part-{len(parts):05d}.parquet"))
        write_parquet(parts[-1], pa.table(table, schema=text.SCHEMA))
    extra = str(tmp_path / "old.parquet")
    write_parquet(extra, pa.table({"norm_hash": pa.array(old, pa.string())}))
    cfg = FilterConfig.model_validate({"checks": {"repeated_caption": {"limit": 3}}})

    decided = text.apply_repeats(wd, parts, cfg, len(hashes), [extra])

    counts = Counter(hashes + old)
    got = pa.concat_tables([read_parquet(u) for u in decided])
    assert got.column("row").to_pylist() == list(range(len(hashes)))
    assert got.column("repeat_count").to_pylist() == [counts[h] for h in hashes]
    reasons = got.column("reason").to_pylist()
    assert reasons == [("repeated_caption" if counts[h] > 3 else None) for h in hashes]
    assert 0 < reasons.count("repeated_caption") < len(hashes)
    groups = len(text.groups_of(len(parts), len(hashes), map_rows)) + 1  # + the file of old rows
    buckets = max(1, -(-(len(hashes) + len(old)) // per_bucket))
    files = lambda sub: len(list((tmp_path / "root").rglob(f"repeat/{sub}/*.parquet")))  # noqa: E731
    assert (files("map"), files("counts")) == (groups, buckets)
    assert buckets > 1 or per_bucket > 1000
