"""A refresh's new rows found by tasks (`pipelines.stages.newrows`) equal the set difference computed
in one process, whatever the number of source groups, buckets and table slices: the same rows, in
source order, numbered 0..n-1 across parts, each with its place in the source list, and the decided
rows' caption hashes. Real local Ray; the parent's tables are parquet files with many row groups."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.keys import sample_key
from catalog.parquet import read_parquet, row_group_slices, write_parquet
from pipelines.filters.clean import caption_repeat_key
from pipelines.stages import newrows
from pipelines.stages.newrows import new_rows
from pipelines.stages.source import text_key
from pipelines.stages.workdir import open_workdir

pytestmark = pytest.mark.slow  # a real local Ray

PART_ROWS = 37


def _source(rng: random.Random, n: int, modality: str) -> list[dict]:
    rows = []
    for r in range(n):
        caption = rng.choice(["a dog", "a red car", "two cats", None, f"photo {rng.randrange(50)}"])
        url = f"http://127.0.0.1/img/{rng.randrange(n * 2)}.jpg"  # repeated URLs: one key, several rows
        if modality == "text":
            rows.append({"row": r, "key": text_key(r, caption or ""), "caption": caption})
        else:
            rows.append({"row": r, "url": url, **({"caption": caption} if modality == "pair" else {})})
    return rows


def _write_parts(wd, rows: list[dict]) -> list[dict]:
    parts = []
    for i in range(0, len(rows), PART_ROWS):
        uri = wd.path("source", f"part-{len(parts):05d}.parquet")
        chunk = rows[i : i + PART_ROWS]
        write_parquet(uri, pa.Table.from_pylist(chunk))
        parts.append({"uri": uri, "rows": len(chunk), "first_row": chunk[0]["row"]})
    return parts


def _write_table(path, keys: list[str], row_group: int) -> str:
    pq.write_table(pa.table({"key": pa.array(keys, pa.string())}), path, row_group_size=row_group)
    return str(path)


@pytest.mark.parametrize(
    ("seed", "modality", "map_rows", "per_bucket"),
    [(0, "pair", 100, 150), (1, "text", 60, 40), (2, "image", 80, 100), (3, "pair", 10_000, 10_000)],
)
def test_new_rows_equal_the_set_difference(local_ray, tmp_path, monkeypatch, seed, modality, map_rows, per_bucket):
    monkeypatch.setattr(newrows, "MAP_ROWS", map_rows)
    monkeypatch.setattr(newrows, "ROWS_PER_BUCKET", per_bucket)
    rng = random.Random(seed)
    rows = _source(rng, 400, modality)
    key = (lambda r: r["key"]) if modality == "text" else (lambda r: sample_key(r["url"]))
    decided = [key(r) for r in rows if rng.random() < 0.6]
    kept_keys, rejected_keys = decided[::3], [k for i, k in enumerate(decided) if i % 3]
    kept_keys += [f"{rng.getrandbits(64):016x}" for _ in range(30)]  # keys no longer in the source list
    wd = open_workdir(str(tmp_path / "root"), "d", {"seed": seed}, log=lambda line: None)
    parts = _write_parts(wd, rows)
    kept = _write_table(tmp_path / "kept.parquet", kept_keys, 17)
    rejects = _write_table(tmp_path / "rejects.parquet", rejected_keys, 23)
    assert len(row_group_slices(kept, map_rows)) > 1 or map_rows > 1000  # several slices where asked

    found = new_rows(parts, kept, rejects, wd, captions=modality != "image", max_caption_chars=1000)

    known = set(decided)
    expected = [r for r in rows if key(r) not in known]
    assert found.total == 400 and found.new == len(expected) and 0 < found.new < 400
    got, placed = [], []
    for part, rows_uri in zip(found.parts, found.source_rows, strict=True):
        t = read_parquet(part["uri"])
        assert t.column("row").to_pylist() == list(range(part["first_row"], part["first_row"] + part["rows"]))
        got += t.drop_columns(["row"]).to_pylist()
        placed += read_parquet(rows_uri).column("source_row").to_pylist()
    assert [p["first_row"] for p in found.parts] == [
        sum(p["rows"] for p in found.parts[:i]) for i in range(len(found.parts))
    ]
    assert placed == [r["row"] for r in expected]  # source order, each row's place in the source list
    assert got == [{k: v for k, v in r.items() if k != "row"} for r in expected]
    hashes = Counter(h for uri in found.earlier for h in read_parquet(uri).column("norm_hash").to_pylist())
    if modality == "image":
        assert found.earlier == []  # no captions to count
    else:
        assert hashes == Counter(caption_repeat_key(r["caption"], 1000) for r in rows if key(r) in known)
    groups = len(newrows.groups_of(len(parts), 400, map_rows))
    slices = len(row_group_slices(kept, map_rows)) + len(row_group_slices(rejects, map_rows))
    buckets = max(1, -(-(400 + len(kept_keys) + len(rejected_keys)) // per_bucket))
    files = lambda sub: len(list((tmp_path / "root").rglob(f"refresh/{sub}/*.parquet")))  # noqa: E731
    assert (files("map"), files("new")) == (groups + slices, buckets)  # one file per task, not per task pair
