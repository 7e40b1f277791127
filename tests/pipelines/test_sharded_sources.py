"""A source of many files: a folder of URL lists or a glob (local or s3://, on moto's S3 server).
Rows are numbered through the files in name order (so adding a file that sorts last keeps
every earlier row id and key), every file's columns are checked before any row is read,
and the manifest lists each file with its rows and sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import storage
from catalog.keys import sample_key
from pipelines.stages.config import SourceConfig
from pipelines.stages.source import SourceError, read_source, text_key
from tests.support.moto import moto_s3


def _lists(folder: Path, sizes=(3, 2, 4)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for f, n in enumerate(sizes):
        part = [f"http://h/{f}/{i}.jpg" for i in range(n)]
        pq.write_table(
            pa.table({"url": part, "caption": [f"a photo {f} {i}" for i in range(n)]}), folder / f"part-{f:02d}.parquet"
        )
        urls += part
    return urls


def test_a_folder_of_parquet_files_is_one_source_with_rows_through_the_files(tmp_path):
    urls = _lists(tmp_path / "lists")
    (tmp_path / "lists" / "README.md").write_text("not a list")  # other files are not read
    src = read_source(SourceConfig(urls=str(tmp_path / "lists")))
    assert src.table.column("row").to_pylist() == list(range(9))
    assert src.table.column("url").to_pylist() == urls
    assert [f["rows"] for f in src.files] == [3, 2, 4]
    assert [Path(f["uri"]).name for f in src.files] == ["part-00.parquet", "part-01.parquet", "part-02.parquet"]
    for f in src.files:
        assert f["sha256"] == hashlib.sha256(Path(f["uri"]).read_bytes()).hexdigest()
    assert src.keys() == [sample_key(u) for u in urls]


def test_a_glob_reads_the_matching_files_in_name_order(tmp_path):
    urls = _lists(tmp_path / "lists")
    src = read_source(SourceConfig(urls=str(tmp_path / "lists" / "part-0[02].parquet")))
    assert src.table.column("url").to_pylist() == urls[:3] + urls[5:]
    with pytest.raises(SourceError, match="matches no file"):
        read_source(SourceConfig(urls=str(tmp_path / "lists" / "*.csv")))


def test_a_file_added_last_keeps_every_earlier_row_and_key(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("one\ntwo\n")
    first = read_source(SourceConfig(urls=str(folder), modality="text"))
    (folder / "b.txt").write_text("three\n")
    second = read_source(SourceConfig(urls=str(folder), modality="text"))
    assert second.keys()[:2] == first.keys() == [text_key(0, "one"), text_key(1, "two")]
    assert second.table.column("row").to_pylist() == [0, 1, 2]


def test_a_bad_file_fails_before_any_row_is_read_naming_file_and_column(tmp_path):
    _lists(tmp_path / "lists")
    bad = tmp_path / "lists" / "part-01.parquet"
    pq.write_table(pa.table({"link": ["http://x"], "caption": ["c"]}), bad)
    with pytest.raises(SourceError) as err:
        read_source(SourceConfig(urls=str(tmp_path / "lists")))
    assert str(err.value).startswith(f"{bad}: column 'url' not found")
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "a.csv").write_text("url,caption\nhttp://a,x\n")
    (tmp_path / "csvs" / "b.csv").write_text("url,text\nhttp://b,y\n")
    with pytest.raises(SourceError, match=r"b\.csv: column 'caption' not found \(columns: url, text\)"):
        read_source(SourceConfig(urls=str(tmp_path / "csvs")))
    (tmp_path / "csvs" / "b.csv").write_text("url,caption\nhttp://b,y\n")
    (tmp_path / "csvs" / "c.tsv").write_text("url\tcaption\nhttp://c\tz\n")
    with pytest.raises(SourceError, match="mix formats"):
        read_source(SourceConfig(urls=str(tmp_path / "csvs")))
    assert read_source(SourceConfig(urls=str(tmp_path / "csvs"), format="csv")).table.num_rows == 2


def test_a_folder_of_lists_on_s3(tmp_path):
    urls = _lists(tmp_path / "lists")
    with moto_s3("lists") as bucket:
        for f in sorted((tmp_path / "lists").iterdir()):
            storage.upload_file(str(f), f"{bucket}/pool/{f.name}")
        src = read_source(SourceConfig(urls=f"{bucket}/pool"))
        assert src.table.column("url").to_pylist() == urls
        assert [f["uri"] for f in src.files] == [f"{bucket}/pool/part-{i:02d}.parquet" for i in range(3)]
        glob = read_source(SourceConfig(urls=f"{bucket}/pool/part-0[12].parquet"))
        assert glob.table.column("url").to_pylist() == urls[3:]
