"""What evaluation sets need from a build, without Ray: `source.keep_columns` (config checks,
reading, the sample json), a local image folder with a caption table as a source, and
`dedup.enabled: false`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from catalog.config import ConfigError, load_config
from catalog.keys import sample_key
from pipelines.stages.assemble import kept_samples, sample_text_fields, text_samples
from pipelines.stages.config import BuildConfig, SourceConfig
from pipelines.stages.dedup import pass_dedup
from pipelines.stages.funnel import StageCount
from pipelines.stages.shard import JSON_FIELDS, sample_json, write_tar
from pipelines.stages.source import SourceError, read_source

REPO = Path(__file__).resolve().parents[2]
SCENE = '{"background":"noise","left_to_right":false,"region":"centre","relation":null,"shapes":[]}'


def _parquet(path: Path, **cols) -> str:
    pq.write_table(pa.table(cols), path)
    return str(path)


def _config(tmp_path: Path, source: dict, **rest) -> BuildConfig:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({"dataset": "d", "root": str(tmp_path / "root"), "source": source, **rest}))
    return load_config(BuildConfig, path)


# ------------------------------------------------------------------ keep_columns: config


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ({"urls": "a.parquet", "keep_columns": ["url"]}, "'url' is a built-in field of the sample json"),
        ({"urls": "a.parquet", "keep_columns": ["scene", "phash"]}, "'phash' is a built-in field"),
        ({"urls": "a.parquet", "modality": "image", "keep_columns": ["width"]}, "'width' is a built-in field"),
        ({"urls": "a.txt", "modality": "text", "keep_columns": ["lang"]}, "'lang' is a built-in field"),
        ({"urls": "a.parquet", "keep_columns": ["views"]}, "'views' is a built-in field"),
        ({"urls": "a.parquet", "keep_columns": ["caption"]}, "raw captions are never written"),
        ({"urls": "a.parquet", "caption_col": "TEXT", "keep_columns": ["TEXT"]}, "is the caption column"),
        ({"urls": "a.parquet", "keep_columns": ["scene", "scene"]}, "column 'scene' is listed twice"),
        ({"urls": "a.parquet", "keep_columns": [""]}, "empty column name"),
        ({"urls": "a.tsv", "format": "tsv_headerless", "keep_columns": ["x"]}, "has no other columns"),
        ({"urls": "a.txt", "modality": "text", "format": "txt", "keep_columns": ["x"]}, "has no other columns"),
    ],
)
def test_keep_columns_mistakes_fail_at_load_naming_file_and_key(tmp_path, source, needle):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, source)
    message = str(err.value)
    assert str(tmp_path / "build.yaml") in message and "key 'source.keep_columns'" in message
    assert needle in message


def test_keep_columns_allowed_names(tmp_path):
    # an image source has no caption or text fields, a text source no url: those names are free there
    cfg = _config(tmp_path, {"urls": "a.parquet", "modality": "image", "keep_columns": ["caption", "lang"]})
    assert cfg.source.keep_columns == ["caption", "lang"]
    cfg = _config(tmp_path, {"urls": "a.parquet", "modality": "text", "keep_columns": ["url", "width"]})
    assert BuildConfig.model_validate(cfg.to_dict()) == cfg  # stored in manifests, re-read by refresh


def test_the_demo_and_eval_configs_keep_the_scene():
    for name, dataset, urls in (
        ("demo.yaml", "demo", "./data/sampleweb/urls.parquet"),
        ("demo-images.yaml", "demo-images", "./data/sampleweb/images.parquet"),
        ("demo-eval.yaml", "demo-eval", "./data/sampleweb/eval.parquet"),
    ):
        cfg = load_config(BuildConfig, REPO / "configs" / name)
        assert (cfg.dataset, cfg.source.urls, cfg.source.keep_columns) == (dataset, urls, ["scene"]), name
    assert load_config(BuildConfig, REPO / "configs" / "demo-eval.yaml").augment is None
    flickr = load_config(BuildConfig, REPO / "configs" / "flickr-eval.yaml")
    assert (flickr.source.urls, flickr.source.caption_table, flickr.dedup.enabled) == (
        "../shared/realdata/flickr",
        "captions_all.tsv",
        False,
    )


# ------------------------------------------------------------------ keep_columns: reading


def test_keep_columns_are_read_from_parquet_csv_and_tsv(tmp_path):
    uri = _parquet(
        tmp_path / "a.parquet",
        url=["http://a/1.jpg", "http://a/2.jpg"],
        caption=["a red circle", "a blue star"],
        scene=[SCENE, None],
        n=pa.array([3, None], pa.int64()),
        score=[0.5, float("nan")],
        nothing=pa.nulls(2),
    )
    src = read_source(SourceConfig(urls=uri, keep_columns=["scene", "n", "score", "nothing"]))
    assert src.table.column_names == ["row", "url", "caption", "keep.scene", "keep.n", "keep.score", "keep.nothing"]
    assert src.table.column("keep.scene").to_pylist() == [SCENE, None]
    assert src.table.column("keep.nothing").type == pa.string()
    csv = tmp_path / "a.csv"
    csv.write_text('url,caption,scene\nhttp://a/1.jpg,a dog,"{""a"": 1}"\n', encoding="utf-8")
    src = read_source(SourceConfig(urls=str(csv), keep_columns=["scene"]))
    assert src.table.column("keep.scene").to_pylist() == ['{"a": 1}']
    tsv = tmp_path / "t.tsv"
    tsv.write_text("caption\tsource_id\na dog\tx-1\n", encoding="utf-8")
    src = read_source(SourceConfig(urls=str(tsv), modality="text", keep_columns=["source_id"]))
    assert src.table.column_names == ["row", "key", "caption", "keep.source_id"]
    # without keep_columns nothing changes
    assert read_source(SourceConfig(urls=uri)).table.column_names == ["row", "url", "caption"]


def test_keep_columns_reading_errors_name_file_and_column(tmp_path):
    uri = _parquet(tmp_path / "x.parquet", url=["http://a"], caption=["c"], blob=[b"\x00"])
    with pytest.raises(
        SourceError, match=r"x\.parquet: column 'scene' not found \(columns: url, caption, blob\); listed"
    ):
        read_source(SourceConfig(urls=uri, keep_columns=["scene"]))
    with pytest.raises(SourceError, match=r"x\.parquet: column 'blob' has type binary; source\.keep_columns carries"):
        read_source(SourceConfig(urls=uri, keep_columns=["blob"]))
    csv = tmp_path / "y.csv"
    csv.write_text("url,caption\nhttp://a,c\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"y\.csv: column 'scene' not found \(columns: url, caption\)"):
        read_source(SourceConfig(urls=str(csv), keep_columns=["scene"]))
    txt = tmp_path / "z.txt"
    txt.write_text("a dog\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"z\.txt: a \.txt source has only captions"):
        read_source(SourceConfig(urls=str(txt), modality="text", keep_columns=["scene"]))


# ------------------------------------------------------------------ keep_columns: the json


def _sample(**extra) -> dict:
    return {
        "key": "00ff00ff00ff00ff",
        "jpg": b"jpeg",
        "caption": "a red square",
        "url": "http://x/1.jpg",
        "orig_width": 300,
        "orig_height": 300,
        "width": 256,
        "height": 256,
        "lang": "en",
        "lang_score": 0.9,
        "english_ratio": 1.0,
        "phash": "0" * 16,
        "person_substituted": False,
        **extra,
    }


def test_kept_columns_reach_the_json_under_their_own_name(tmp_path):
    s = _sample(**{"keep.scene": SCENE, "keep.gone": None, "keep.n": 3, "keep.score": float("nan")})
    meta = sample_json(s)
    assert meta["scene"] == SCENE and meta["gone"] is None and meta["n"] == 3 and meta["score"] is None
    assert set(meta) == {*JSON_FIELDS["pair"], "scene", "gone", "n", "score"}
    write_tar(str(tmp_path / "a.tar"), [s])
    with tarfile.open(tmp_path / "a.tar") as tar:
        raw = json.loads(tar.extractfile("00ff00ff00ff00ff.json").read())
    assert raw["scene"] == SCENE and json.loads(raw["scene"])["region"] == "centre"  # the string, verbatim
    assert sample_json(_sample()) == {k: _sample()[k] for k in JSON_FIELDS["pair"]}  # nothing kept: as before


def test_kept_columns_are_joined_by_row_onto_the_kept_samples():
    text = pa.table(
        {
            "row": [0, 1],
            "key": ["k0", "k1"],
            "url": ["u0", "u1"],
            "caption": ["a", "b"],
            "lang": ["en", "pl"],
            "lang_en_prob": [0.9, 0.35],
            "english_ratio": [1.0, 0.91234],
            "person_substituted": [False, False],
        }
    )
    # the sample json's text fields: every kept caption is English, scores rounded to 4 digits
    fields = sample_text_fields(text).to_pylist()
    assert [(r["lang"], r["lang_score"], r["english_ratio"]) for r in fields] == [
        ("en", 0.9, 1.0),
        ("en", 0.35, 0.9123),
    ]
    carried = pa.table({"row": [1, 0], "keep.scene": ["s1", None]})
    rows = text_samples(text.filter(pa.array([False, True])), carried).to_pylist()
    assert [(r["row"], r["keep.scene"]) for r in rows] == [(1, "s1")]
    dl = pa.table(
        {
            "row": [0, 1],
            "width": [1, 1],
            "height": [1, 1],
            "original_width": [1, 1],
            "original_height": [1, 1],
            "sha256": ["a", "b"],
            "raw": ["r", "r"],
        }
    )
    img = pa.table({"row": [0, 1], "phash": ["0" * 16] * 2})
    kept = kept_samples(pa.table({"row": [0, 1]}), text, dl, img, carried).to_pylist()
    assert [(r["row"], r["keep.scene"]) for r in kept] == [(0, None), (1, "s1")]


# ------------------------------------------------------------------ a folder of images as a source


def _folder(tmp_path: Path, table: str = "captions.tsv", text: str | None = None) -> Path:
    folder = tmp_path / "photos dir"
    folder.mkdir(exist_ok=True)
    for name, colour in (("a.jpg", (200, 30, 30)), ("b.jpg", (30, 30, 200))):
        Image.new("RGB", (320, 240), colour).save(folder / name)
    (folder / table).write_text(
        text
        if text is not None
        else "file\tcaption\n"
        "a.jpg\ta red picture\n"
        "b.jpg\ta blue picture\n"
        'a.jpg\t"a picture called ""red"""\n'
        "missing.jpg\ta picture nobody took\n",
        encoding="utf-8",
    )
    return folder


def test_folder_source_rows_get_file_urls_with_the_caption_index(tmp_path):
    folder = _folder(tmp_path)
    src = read_source(SourceConfig(urls=str(folder), keep_columns=["file"]))
    base = folder.resolve().as_uri()
    assert "%20" in base  # the space in the folder name is quoted
    assert src.table.to_pylist() == [
        {"row": 0, "url": f"{base}/a.jpg#0", "caption": "a red picture", "keep.file": "a.jpg"},
        {"row": 1, "url": f"{base}/b.jpg#0", "caption": "a blue picture", "keep.file": "b.jpg"},
        {"row": 2, "url": f"{base}/a.jpg#1", "caption": 'a picture called "red"', "keep.file": "a.jpg"},
        {"row": 3, "url": f"{base}/missing.jpg#0", "caption": "a picture nobody took", "keep.file": "missing.jpg"},
    ]
    keys = src.keys()
    assert len(set(keys)) == 4 and keys[0] == sample_key(f"{base}/a.jpg#0")
    assert src.uri == str(folder.resolve() / "captions.tsv") and src.files[0]["rows"] == 4
    image = read_source(SourceConfig(urls=str(folder), modality="image"))
    assert image.table.column_names == ["row", "url"] and image.table.num_rows == 4


def test_folder_source_reads_a_named_csv_or_parquet_table(tmp_path):
    folder = _folder(tmp_path, "all.csv", 'file,text,idx\na.jpg,"a red, red picture",0\nb.jpg,blue,1\n')
    src = read_source(SourceConfig(urls=str(folder), caption_table="all.csv", caption_col="text"))
    assert src.table.column("caption").to_pylist() == ["a red, red picture", "blue"]
    _parquet(folder / "captions.parquet", file=["b.jpg", "b.jpg"], caption=["x", "y"])
    src = read_source(SourceConfig(urls=str(folder)))  # the only default-named table there
    assert [u.rsplit("/", 1)[1] for u in src.table.column("url").to_pylist()] == ["b.jpg#0", "b.jpg#1"]


@pytest.mark.parametrize(
    ("table", "text", "cfg", "needle"),
    [
        (
            "notes.txt",
            "x",
            {},
            "a folder source needs one caption table (captions.tsv, captions.csv, captions.parquet; found none)",
        ),
        ("captions.tsv", "file\tcaption\n", {"caption_table": "other.tsv"}, "other.tsv: caption table not found"),
        (
            "captions.tsv",
            "name\tcaption\na.jpg\tx\n",
            {},
            "captions.tsv: column 'file' not found (columns: name, caption)",
        ),
        ("captions.tsv", "file\ttext\na.jpg\tx\n", {}, "captions.tsv: column 'caption' not found"),
        ("captions.tsv", "file\tcaption\na.jpg\tx\n../b.jpg\ty\n", {}, "column 'file', row 1: not a file name inside"),
        ("captions.tsv", "file\tcaption\n/etc/passwd\ty\n", {}, "column 'file', row 0: not a file name inside"),
        ("captions.tsv", "file\tcaption\n", {}, "captions.tsv: no rows"),
        ("captions.tsv", "", {}, "captions.tsv: empty file"),
        ("captions.tsv", "file\tcaption\na.jpg\tx\n", {"url_col": "link"}, "source.url_col is not read"),
        ("captions.tsv", "file\tcaption\na.jpg\tx\n", {"keep_columns": ["idx"]}, "column 'idx' not found"),
        ("table.json", "{}", {"caption_table": "table.json"}, "table.json: a caption table is a parquet, csv or tsv"),
    ],
)
def test_folder_source_errors_name_the_table_and_column(tmp_path, table, text, cfg, needle):
    folder = _folder(tmp_path, table, text)
    with pytest.raises(SourceError) as err:
        read_source(SourceConfig(urls=str(folder), **cfg))
    assert needle in str(err.value)


def test_folder_source_refusals(tmp_path):
    folder = _folder(tmp_path)
    (folder / "captions.csv").write_text("file,caption\na.jpg,x\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"found captions\.tsv, captions\.csv\); set source\.caption_table"):
        read_source(SourceConfig(urls=str(folder)))
    with pytest.raises(SourceError, match="a text source reads one caption file"):
        read_source(SourceConfig(urls=str(folder), modality="text"))
    uri = _parquet(tmp_path / "a.parquet", url=["http://a"], caption=["c"])
    with pytest.raises(SourceError, match="caption_table is read only when source.urls is a local folder"):
        read_source(SourceConfig(urls=uri, caption_table="captions.tsv"))


# ------------------------------------------------------------------ dedup.enabled


def test_dedup_can_be_turned_off(tmp_path):
    images = pa.table({"row": [0, 1], "key": ["b", "a"], "sha256": ["same", "same"], "phash": ["0" * 16] * 2})
    out = pass_dedup(images)
    assert out.column("reason").to_pylist() == [None, None]
    assert StageCount.of("dedup", 2, out.column("reason").to_pylist()).kept == 2
    cfg = _config(tmp_path, {"urls": "a.parquet"}, dedup={"enabled": False})
    assert cfg.dedup.enabled is False and _config(tmp_path, {"urls": "a.parquet"}).dedup.enabled is True
