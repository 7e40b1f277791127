"""Image-only and text-only sources without Ray: reading and validating them (parquet, csv,
txt), their sample keys, config combinations, the members and manifest a unimodal version
gets, and the sample web corpus's two unimodal lists."""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageOps

from augment.config import AugmentConfig
from catalog.__main__ import run as catalog_cli
from catalog.config import ConfigError, load_config
from catalog.errors import UserError
from catalog.keys import sample_key
from catalog.manifest import ManifestError, check_manifest, modality_of
from catalog.stats import version_stats
from catalog.store import Catalog
from catalog.web.pages import dataset_list, version_page
from pipelines.phash import hamming
from pipelines.sampleweb import cli, generate
from pipelines.sampleweb.corpus import image_phash
from pipelines.stages.config import BuildConfig, SourceConfig
from pipelines.stages.outputs import write_version
from pipelines.stages.pipeline import run_build
from pipelines.stages.refresh import run_refresh
from pipelines.stages.shard import write_tar
from pipelines.stages.source import SourceError, read_source, text_key
from pipelines.views.job import ViewModalityError, augment_version

BASE = "http://127.0.0.1:8765"


def _parquet(path: Path, **cols) -> str:
    pq.write_table(pa.table(cols), path)
    return str(path)


# ------------------------------------------------------------------ reading image-only sources


def test_image_source_reads_only_the_url_column(tmp_path):
    uri = _parquet(tmp_path / "laion.parquet", URL=["http://a/1.jpg", "http://a/2.jpg"], TEXT=["a dog", None])
    src = read_source(SourceConfig(urls=uri, modality="image", url_col="URL"))
    assert src.table.column_names == ["row", "url"]
    assert src.table.to_pylist() == [{"row": 0, "url": "http://a/1.jpg"}, {"row": 1, "url": "http://a/2.jpg"}]
    assert src.keys() == [sample_key("http://a/1.jpg"), sample_key("http://a/2.jpg")]
    assert src.files[0]["rows"] == 2


def test_image_source_from_a_url_only_csv(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text("url\nhttp://a/1.jpg\nhttp://a/2.png\n", encoding="utf-8")
    src = read_source(SourceConfig(urls=str(path), modality="image"))
    assert src.table.column("url").to_pylist() == ["http://a/1.jpg", "http://a/2.png"]


def test_image_source_errors_name_file_column_and_row(tmp_path):
    uri = _parquet(tmp_path / "x.parquet", link=["http://a"])
    with pytest.raises(SourceError, match=r"x\.parquet: column 'url' not found \(columns: link\); an image source"):
        read_source(SourceConfig(urls=uri, modality="image"))
    uri = _parquet(tmp_path / "y.parquet", url=["http://a", ""])
    with pytest.raises(SourceError, match=r"y\.parquet: column 'url', row 1: empty URL"):
        read_source(SourceConfig(urls=uri, modality="image"))
    uri = _parquet(tmp_path / "z.parquet", url=[1, 2])
    with pytest.raises(SourceError, match=r"z\.parquet: column 'url' has type int64, expected string"):
        read_source(SourceConfig(urls=uri, modality="image"))


# ------------------------------------------------------------------ reading text-only sources


def test_text_source_from_parquet(tmp_path):
    uri = _parquet(tmp_path / "texts.parquet", caption=["a red circle", None, "a red circle"], url=["x", "y", "z"])
    src = read_source(SourceConfig(urls=uri, modality="text"))
    assert src.table.column_names == ["row", "key", "caption"]
    assert src.table.column("caption").to_pylist() == ["a red circle", "", "a red circle"]
    assert src.keys() == [text_key(0, "a red circle"), text_key(1, ""), text_key(2, "a red circle")]


def test_text_source_from_txt_one_caption_per_line(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_bytes("a red circle\r\n\nune étoile bleue\na <b>blue</b> star".encode())
    src = read_source(SourceConfig(urls=str(path), modality="text"))
    assert src.table.column("caption").to_pylist() == ["a red circle", "", "une étoile bleue", "a <b>blue</b> star"]
    assert src.table.column("row").to_pylist() == [0, 1, 2, 3]
    path.write_text("one\ntwo\n", encoding="utf-8")  # the final newline ends the last line, no extra row
    assert read_source(SourceConfig(urls=str(path), modality="text")).table.num_rows == 2


def test_text_source_from_csv_and_tsv(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text('id,text\n1,"a dog, running"\n2,a cat\n', encoding="utf-8")
    src = read_source(SourceConfig(urls=str(csv), modality="text", caption_col="text"))
    assert src.table.column("caption").to_pylist() == ["a dog, running", "a cat"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("caption\na dog\n", encoding="utf-8")
    assert read_source(SourceConfig(urls=str(tsv), modality="text")).table.column("caption").to_pylist() == ["a dog"]


def test_text_source_errors_name_file_column_and_line(tmp_path):
    uri = _parquet(tmp_path / "urls.parquet", url=["http://a"])
    with pytest.raises(SourceError, match=r"urls\.parquet: column 'caption' not found \(columns: url\); a text source"):
        read_source(SourceConfig(urls=uri, modality="text"))
    csv = tmp_path / "c.csv"
    csv.write_text("text\nx\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"c\.csv: column 'caption' not found \(columns: text\).*source\.caption_col"):
        read_source(SourceConfig(urls=str(csv), modality="text"))
    txt = tmp_path / "l.txt"
    txt.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(SourceError, match=r"l\.txt: not UTF-8 text \(line 3"):
        read_source(SourceConfig(urls=str(txt), modality="text"))
    txt.write_bytes(b"fine\nbinary\x00junk\n")
    with pytest.raises(SourceError, match=r"l\.txt: line 2: NUL byte"):
        read_source(SourceConfig(urls=str(txt), modality="text"))
    txt.write_bytes(b"")
    with pytest.raises(SourceError, match=r"l\.txt: empty file"):
        read_source(SourceConfig(urls=str(txt), modality="text"))
    with pytest.raises(SourceError, match=r"nope\.txt: file not found"):
        read_source(SourceConfig(urls=str(tmp_path / "nope.txt"), modality="text"))
    with pytest.raises(SourceError, match=r"t\.json: cannot tell the format.*parquet, csv, tsv, txt"):
        read_source(SourceConfig(urls=str(tmp_path / "t.json"), modality="text"))


def test_caption_values_never_reach_error_messages(tmp_path):
    secret = "Sofia Wilson"
    uri = _parquet(tmp_path / "x.parquet", caption=[secret], other=[secret])
    with pytest.raises(SourceError) as err:
        read_source(SourceConfig(urls=uri, modality="text", caption_col="other2"))
    assert secret not in str(err.value)


# ------------------------------------------------------------------ keys


def test_text_keys_are_stable_unique_and_survive_appending(tmp_path):
    captions = ["a red circle", "a red circle", "", "a blue star", "a blue star"]
    uri = _parquet(tmp_path / "a.parquet", caption=captions)
    first = read_source(SourceConfig(urls=uri, modality="text")).keys()
    assert first == read_source(SourceConfig(urls=uri, modality="text")).keys()  # stable
    assert len(set(first)) == len(first) and all(len(k) == 16 for k in first)  # unique, even for equal captions
    txt = tmp_path / "a.txt"
    txt.write_text("\n".join(captions) + "\n", encoding="utf-8")
    assert read_source(SourceConfig(urls=str(txt), modality="text")).keys() == first  # same rows, same keys
    uri = _parquet(tmp_path / "b.parquet", caption=[*captions, "a green heart"])
    assert read_source(SourceConfig(urls=uri, modality="text")).keys()[:5] == first  # appending keeps old keys
    assert text_key(0, "a red circle") != text_key(0, "a red circle.") != text_key(1, "a red circle")
    assert text_key(0, "x") != sample_key("x")  # never the key a URL "x" would have


def test_text_key_is_documented_formula():
    assert text_key(7, "a dog") == sample_key("text:7:a dog")


# ------------------------------------------------------------------ config combinations


def _config(tmp_path: Path, data: dict) -> BuildConfig:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({"dataset": "d", "root": str(tmp_path / "root"), **data}))
    return load_config(BuildConfig, path)


@pytest.mark.parametrize(
    ("source", "key", "needle"),
    [
        ({"urls": "a.parquet", "modality": "image", "caption_col": "TEXT"}, "source.caption_col", "not read"),
        ({"urls": "a.parquet", "modality": "text", "url_col": "URL"}, "source.url_col", "not read"),
        ({"urls": "a.txt", "format": "txt"}, "source.format", "modality 'pair' reads only"),
        ({"urls": "a.tsv", "modality": "text", "format": "tsv_headerless"}, "source.format", "reads only"),
        ({"urls": "a.tsv", "modality": "image", "format": "tsv_headerless"}, "source.format", "reads only"),
        ({"urls": "a.parquet", "modality": "audio"}, "source.modality", "allowed values: pair, image, text"),
    ],
)
def test_config_combinations_fail_at_load_naming_file_and_key(tmp_path, source, key, needle):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, {"source": source})
    assert str(tmp_path / "build.yaml") in str(err.value)
    assert f"key {key!r}" in str(err.value) and needle in str(err.value)


def test_views_of_the_other_modality_fail_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'augment\.views': view kinds global, local do not fit.*take bt, eda"):
        _config(
            tmp_path,
            {"source": {"urls": "a.txt", "modality": "text"}, "augment": {"views": ["global", "local", "eda"]}},
        )
    with pytest.raises(ConfigError, match=r"view kinds eda do not fit source\.modality 'image'.*take global, local"):
        _config(
            tmp_path, {"source": {"urls": "a.parquet", "modality": "image"}, "augment": {"views": ["global", "eda"]}}
        )
    ok = _config(tmp_path, {"source": {"urls": "a.txt", "modality": "text"}, "augment": {"views": ["eda", "bt"]}})
    assert ok.source.modality == "text"
    # the resolved config (stored in manifests, re-read by refresh) validates back to itself
    assert BuildConfig.model_validate(ok.to_dict()) == ok


def test_the_demo_configs_build_the_two_unimodal_lists():
    repo = Path(__file__).resolve().parents[2]
    images = load_config(BuildConfig, repo / "configs" / "demo-images.yaml")
    texts = load_config(BuildConfig, repo / "configs" / "demo-text.yaml")
    assert (images.dataset, images.source.modality, images.source.urls) == (
        "demo-images",
        "image",
        "./data/sampleweb/images.parquet",
    )
    assert (texts.dataset, texts.source.modality, texts.source.urls) == (
        "demo-text",
        "text",
        "./data/sampleweb/texts.parquet",
    )
    demo = (repo / "infra" / "demo.sh").read_text()
    paired = demo.index("build configs/demo.yaml")
    assert paired < demo.index("build configs/demo-images.yaml") < demo.index("build configs/demo-text.yaml")
    steps = [line.split('"')[1].split()[0] for line in demo.splitlines() if line.startswith('step "')]
    assert steps == [f"{i}/{len(steps)}" for i in range(1, len(steps) + 1)]


def test_a_text_source_has_no_download_stage(tmp_path):
    cfg = _config(tmp_path, {"source": {"urls": str(tmp_path / "t.txt"), "modality": "text"}})
    with pytest.raises(UserError, match="a text source .* has no download stage"):
        run_build(cfg, stop_after="download")


# ------------------------------------------------------------------ members, manifest, stats, catalog


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 240), colour).save(buf, "JPEG")
    return buf.getvalue()


def _kept(modality: str, n: int) -> pa.Table:
    rows = []
    for i in range(n):
        text = modality != "image"
        image = modality != "text"
        rows.append(
            {
                "key": text_key(i, f"caption {i}") if not image else sample_key(f"http://x/{i}.jpg"),
                "url": f"http://x/{i}.jpg" if image else None,
                "caption": f"a red circle number {i} <person>"
                if text and i == 0
                else (f"a red circle {i}" if text else None),
                "shard": "v1/shards/shard-000000.tar",
                "orig_width": 600 if image else None,
                "orig_height": 480 if image else None,
                "width": 320 if image else None,
                "height": 256 if image else None,
                "lang": "en" if text else None,
                "lang_score": 0.9 if text else None,
                "english_ratio": 1.0 if text else None,
                "phash": "0" * 16 if image else None,
                "person_substituted": (i == 0) if text else None,
                "sha256": "0" * 64 if image else None,
                "jpg": _jpeg((20 * i, 0, 0)) if image else None,
            }
        )
    return pa.Table.from_pylist(rows)


def _publish(root: Path, dataset: str, modality: str, n: int = 4) -> dict:
    """A version written by the build's own writers (write_tar, write_version), without Ray."""
    kept = _kept(modality, n)
    shard = write_tar(str(root / dataset / "v1" / "shards" / "shard-000000.tar"), kept.to_pylist(), modality)
    rejects = pa.table({k: pa.array([], pa.string()) for k in ("key", "url", "stage", "reason")})
    stages = [
        {"stage": "source", "in": n, "kept": n, "rejected": {}},
        {"stage": "text", "in": n, "kept": n, "rejected": {}},
    ]
    config = {"dataset": dataset, "source": {"urls": "x", "modality": modality}}
    return write_version(
        str(root / dataset / "v1"),
        dataset=dataset,
        version=1,
        config=config,
        sources=[{"uri": "x", "rows": n, "sha256": "0" * 64}],
        funnel={"in": n, "kept": n, "rejected": {}, "stages": stages},
        kept=kept.drop_columns(["jpg"]),
        rejects=rejects,
        shards=[{"path": "v1/shards/shard-000000.tar", **shard}],
        modality=modality,
    )


def _names(tar_path: Path) -> list[str]:
    with tarfile.open(tar_path) as tar:
        return tar.getnames()


@pytest.mark.parametrize(("modality", "members"), [("image", ["jpg", "json"]), ("text", ["txt", "json"])])
def test_unimodal_shards_and_manifest(tmp_path, modality, members):
    m = _publish(tmp_path, "d", modality)
    names = _names(tmp_path / "d" / "v1" / "shards" / "shard-000000.tar")
    assert [n.split(".", 1)[1] for n in names] == members * 4
    assert m["modality"] == modality and modality_of(m) == modality
    assert m["schema"] == {"keys": sorted(members), "views": {"image": [], "text": []}}
    with tarfile.open(tmp_path / "d" / "v1" / "shards" / "shard-000000.tar") as tar:
        meta = json.loads(tar.extractfile(names[1]).read())
    expected = (
        {"url", "orig_width", "orig_height", "width", "height", "phash"}
        if modality == "image"
        else {"lang", "lang_score", "english_ratio", "person_substituted"}
    )
    assert set(meta) == expected
    stats = m["stats"]
    if modality == "image":
        assert sum(stats["caption_words"]["counts"]) == 0 and stats["person_share"] == 0.0
        assert sum(stats["image_short_side"]["counts"]) == 4 == sum(stats["aspect_ratio"]["counts"])
    else:
        assert sum(stats["image_short_side"]["counts"]) == 0 == sum(stats["aspect_ratio"]["counts"])
        assert sum(stats["caption_words"]["counts"]) == 4 and stats["person_share"] == pytest.approx(0.25)
        assert sum(stats["lid_score"]["counts"]) == 4
    kept = pq.read_table(tmp_path / "d" / "v1" / "kept.parquet")
    assert kept.column_names[:7] == ["key", "url", "caption", "shard", "orig_width", "orig_height", "lang_score"]


def test_stats_without_captions_or_sizes():
    image_only = version_stats([(None, {"orig_width": 400, "orig_height": 200})])
    assert sum(image_only["caption_words"]["counts"]) == 0 and image_only["person_share"] == 0.0
    assert image_only["aspect_ratio"]["counts"][4] == 1  # ratio 2.0
    text_only = version_stats([("a <person> by the sea", {"lang_score": 0.95}), ("a dog", {})])
    assert sum(text_only["image_short_side"]["counts"]) == 0 and text_only["person_share"] == 0.5


def test_check_manifest_reads_modality(tmp_path):
    m = _publish(tmp_path, "d", "text")
    assert check_manifest(m, "m.json") is m
    old = {k: v for k, v in m.items() if k != "modality"}
    assert modality_of(check_manifest(old, "m.json")) == "pair"  # a manifest without the field holds pairs
    with pytest.raises(ManifestError, match=r"m\.json: field 'modality' is 'audio', expected one of pair, image, text"):
        check_manifest({**m, "modality": "audio"}, "m.json")
    with pytest.raises(ManifestError, match=r"m\.json: field 'schema\.keys' lists 'jpg' but a text-only version"):
        check_manifest({**m, "schema": {"keys": ["jpg", "json", "txt"], "views": {}}}, "m.json")


def test_catalog_list_show_and_web_name_the_modality(tmp_path, capsys):
    for dataset, modality in (("imgs", "image"), ("txts", "text")):
        _publish(tmp_path, dataset, modality)
    assert catalog_cli(["--root", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["version", "modality", "created"]
    rows = {line.split()[0]: line.split()[1] for line in out[2:]}
    assert rows == {"imgs@1": "image", "txts@1": "text"}
    assert catalog_cli(["--root", str(tmp_path), "list", "--json"]) == 0
    assert [r["modality"] for r in json.loads(capsys.readouterr().out)["versions"]] == ["image", "text"]
    assert catalog_cli(["--root", str(tmp_path), "show", "txts@1"]) == 0
    assert "txts@1  modality text  created" in capsys.readouterr().out.splitlines()[0]
    catalog = Catalog(str(tmp_path))
    catalog.refresh()
    assert '<span id="modality">image</span>' in version_page(catalog, "imgs", 1)
    index = dataset_list(catalog)
    assert "<th>modality</th>" in index and "<td>text</td>" in index


def test_augment_refuses_view_kinds_of_the_other_modality_before_ray(tmp_path):
    _publish(tmp_path, "txts", "text")
    with pytest.raises(ViewModalityError, match=r"txts@1 is text-only: view kinds global, local .* take bt, eda"):
        augment_version(str(tmp_path), "txts", 1, AugmentConfig(views=["global", "local", "eda"]))
    _publish(tmp_path, "imgs", "image")
    with pytest.raises(ViewModalityError, match=r"imgs@1 is image-only: view kinds bt \(augment\.views\)"):
        augment_version(str(tmp_path), "imgs", 1, AugmentConfig(views=["global", "bt"]))


def test_refresh_keeps_the_modality(tmp_path):
    _publish(tmp_path, "txts", "text")
    path = tmp_path / "images.parquet"
    _parquet(path, url=["http://x/1.jpg"])
    cfg = BuildConfig.model_validate(
        {"dataset": "txts", "root": str(tmp_path), "source": {"urls": str(path), "modality": "image"}}
    )
    with pytest.raises(UserError, match=r"txts@1 has modality 'text' but source\.modality is 'image'"):
        run_refresh(cfg)


# ------------------------------------------------------------------ the sample web corpus


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    plain, both = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("unimodal")
    generate(plain, 120, seed=5, base_url=BASE)
    generate(both, 120, seed=5, base_url=BASE, n_images=60, n_texts=80)
    return plain, both


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_sample_web_unimodal_lists_leave_the_paired_corpus_byte_identical(corpora):
    plain, both = corpora
    a, b = _tree(plain), _tree(both)
    for name in ("urls.parquet", "truth.parquet"):
        assert a[name] == b[name], name
    paired_images = {k for k in a if k.startswith("images/")}
    assert {k: b[k] for k in paired_images} == {k: a[k] for k in paired_images}


def test_sample_web_emits_an_image_only_url_list(corpora):
    _, out = corpora
    images = pq.read_table(out / "images.parquet")
    assert images.column_names == ["url", "scene"] and images.num_rows == 60
    urls = images.column("url").to_pylist()
    paired = set(pq.read_table(out / "urls.parquet").column("url").to_pylist())
    assert len(set(urls)) == 60 and not set(urls) & paired
    truth = pq.read_table(out / "images_truth.parquet").to_pylist()
    assert [t["url"] for t in truth] == urls
    fates = {t["fate"] for t in truth}
    assert "keep" in fates and {"download_failed", "not_an_image", "image_too_small", "duplicate_image"} <= fates
    assert not fates & {"empty_caption", "not_english", "meaningless_caption", "repeated_caption"}
    # served files are new ones, pHash-far from every paired image
    paired_hashes = [
        image_phash(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
        for p in sorted((out / "images").glob("0*.jpg"))
        if p.stat().st_size > 2000  # not the HTML pages and truncated files
    ]
    checked = 0
    for t in truth:
        if t["category"] == "clean" and "/images/" in t["url"]:
            path = out / "images" / t["url"].rsplit("/", 1)[1]
            assert path.name.startswith("i") and path.is_file()
            h = image_phash(Image.open(path).convert("RGB"))
            assert min(hamming(h, p) for p in paired_hashes) > 8
            checked += 1
    assert checked > 30


def test_sample_web_emits_a_text_only_caption_list(corpora):
    _, out = corpora
    texts = pq.read_table(out / "texts.parquet")
    assert texts.column_names == ["caption"] and texts.num_rows == 80
    truth = pq.read_table(out / "texts_truth.parquet").to_pylist()
    assert len(truth) == 80
    fates = [t["fate"] for t in truth]
    assert {"keep", "not_english", "meaningless_caption", "empty_caption", "repeated_caption"} <= set(fates)
    assert not set(fates) & {"download_failed", "not_an_image", "duplicate_image", "image_too_small"}
    captions = texts.column("caption").to_pylist()
    paired = set(pq.read_table(out / "urls.parquet").column("caption").to_pylist())
    repeated = {c for c, t in zip(captions, truth) if t["category"] == "repeated_caption"}
    assert len(repeated) == 1 and not repeated & paired  # its own spam caption, 14 times
    assert any("<person>" in t["clean_caption"] for t in truth)
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["texts"]["n"] == 80 and summary["images"]["n"] == 60
    assert summary["texts"]["fates"]["repeated_caption"] == 14


def test_sample_web_cli_writes_the_two_lists_by_default(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="pipelines")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sample-web", "--out", str(tmp_path), "--n", "100", "--seed", "2"])
    assert args.func(args) == 0
    assert (
        "image-only list: 30 rows (images.parquet); text-only list: 30 rows (texts.parquet)" in capsys.readouterr().out
    )
    assert (
        pq.read_table(tmp_path / "images.parquet").num_rows == 30 == pq.read_table(tmp_path / "texts.parquet").num_rows
    )
