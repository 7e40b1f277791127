"""Published tables read piece by piece: row-group slices cover every row group once, in order,
near the row target; an empty table is one empty slice; the streamed rows equal the file's."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.parquet import iter_row_groups, num_rows, read_row_groups, row_group_slices


@pytest.mark.parametrize(("rows", "group", "target"), [(100, 7, 20), (100, 7, 3), (5, 10, 100), (1000, 100, 250)])
def test_slices_cover_every_row_group_once_near_the_target(tmp_path, rows, group, target):
    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.table({"k": [f"{i}" for i in range(rows)]}), path, row_group_size=group)
    slices = row_group_slices(path, target)
    assert [g for s in slices for g in s] == list(range(pq.ParquetFile(path).num_row_groups))
    sizes = [read_row_groups(path, s).num_rows for s in slices]
    assert sum(sizes) == rows == num_rows(path)
    assert all(n <= max(target, group) for n in sizes)  # a slice exceeds the target only by being one group
    assert all(a + b > target for a, b in zip(sizes, sizes[1:]))  # and is not split finer than needed
    assert pa.concat_tables(iter_row_groups(path)).column("k").to_pylist() == [f"{i}" for i in range(rows)]


def test_an_empty_table_is_one_empty_slice(tmp_path):
    path = str(tmp_path / "e.parquet")
    pq.write_table(pa.table({"k": pa.array([], pa.string())}), path)
    slices = row_group_slices(path, 10)
    assert sum(read_row_groups(path, s, ["k"]).num_rows for s in slices) == 0
