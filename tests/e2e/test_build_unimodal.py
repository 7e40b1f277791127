"""Image-only and text-only builds end to end: the sample corpus's unimodal lists served on
127.0.0.1, `python -m pipelines build` (real local Ray, img2dataset for the images, the real
text chain for the captions) with views of the matching modality, then a refresh of each
with a few appended rows, and the catalog CLI.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from catalog.__main__ import run as catalog_run
from catalog.cli import run as pipelines_run
from catalog.keys import sample_key
from catalog.reasons import KEEP
from pipelines.__main__ import COMMANDS
from pipelines.sampleweb.corpus import generate
from pipelines.stages.source import text_key
from pipelines.webserver import CorpusServer, free_port

N_IMAGES, N_TEXTS = 60, 150
NEW_CAPTIONS = [
    "a small red circle above a large blue square",
    "",
    "IMG_2041.JPG",
    "a green heart on a striped background",
]


def _cli(*argv: str) -> int:
    return pipelines_run("python -m pipelines", "", COMMANDS, list(argv))


def _write_config(path: Path, cfg: dict) -> str:
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(corpus dir, root, the appended image URLs) after building and refreshing `images` and `texts`."""
    work = tmp_path_factory.mktemp("unimodal")
    corpus, root = work / "corpus", work / "root"
    port = free_port()
    generate(corpus, n=60, seed=5, base_url=f"http://127.0.0.1:{port}", n_images=N_IMAGES, n_texts=N_TEXTS)
    common = {"root": str(root), "ray": {"num_cpus": 2}, "shard": {"samples_per_shard": 20}}
    images = _write_config(
        work / "images.yaml",
        {
            **common,
            "dataset": "images",
            "source": {"urls": str(corpus / "images.parquet"), "modality": "image"},
            "download": {"timeout": 3, "thread_count": 8},
            "augment": {"views": ["global"], "num_workers": 1},
        },
    )
    texts = _write_config(
        work / "texts.yaml",
        {
            **common,
            "dataset": "texts",
            "source": {"urls": str(corpus / "texts.parquet"), "modality": "text"},
            "augment": {"views": ["eda"], "num_workers": 1},
        },
    )
    # the refreshes' grown lists: 2 paired images (new, distinct) + an exact copy of a kept image-only one;
    # 4 new captions appended to the text list
    truth = pq.read_table(corpus / "images_truth.parquet").to_pylist()
    paired = pq.read_table(corpus / "truth.parquet").to_pylist()
    copy_of = next(t["url"] for t in truth if t["fate"] == KEEP and t["category"] == "clean")
    extra = [t["url"] for t in paired if t["fate"] == KEEP and t["category"] == "clean"][:2] + [copy_of + "?copy=1"]
    urls = pq.read_table(corpus / "images.parquet").column("url").to_pylist()
    pq.write_table(pa.table({"url": urls + extra}), work / "images-grown.parquet")
    captions = pq.read_table(corpus / "texts.parquet").column("caption").to_pylist()
    pq.write_table(pa.table({"caption": captions + NEW_CAPTIONS}), work / "texts-grown.parquet")
    with CorpusServer(corpus, port=port, slow_seconds=4):
        assert _cli("build", images) == 0
        assert _cli("build", texts) == 0
        assert (
            _cli("refresh", "images", "--root", str(root), "--set", f"source.urls={work / 'images-grown.parquet'}") == 0
        )
    assert _cli("refresh", "texts", "--root", str(root), "--set", f"source.urls={work / 'texts-grown.parquet'}") == 0
    return corpus, root, extra


def _manifest(root: Path, dataset: str, version: int) -> dict:
    return json.loads((root / dataset / f"v{version}" / "manifest.json").read_text())


def _tables(root: Path, dataset: str, version: int) -> tuple[dict, dict]:
    vdir = root / dataset / f"v{version}"
    kept = {r["key"]: r for r in pq.read_table(vdir / "kept.parquet").to_pylist()}
    rejects = {r["key"]: r for r in pq.read_table(vdir / "rejects.parquet").to_pylist()}
    return kept, rejects


def _samples(root: Path, dataset: str, manifest: dict) -> list[tuple[str, list[str], dict[str, bytes]]]:
    """(key, member extensions in tar order, members) per sample of the version's shards."""
    out: list[tuple[str, list[str], dict[str, bytes]]] = []
    for shard in manifest["shards"]:
        with tarfile.open(root / dataset / shard["path"]) as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                if not out or out[-1][0] != key:
                    out.append((key, [], {}))
                out[-1][1].append(ext)
                out[-1][2][ext] = tar.extractfile(info).read()
    return out


def test_image_only_rows_match_truth(built):
    corpus, root, _ = built
    kept, rejects = _tables(root, "images", 1)
    truth = pq.read_table(corpus / "images_truth.parquet").to_pylist()
    got = {
        sample_key(t["url"]): "keep" if sample_key(t["url"]) in kept else rejects[sample_key(t["url"])]["reason"]
        for t in truth
    }
    wrong = [
        (t["category"], t["fate"], got[sample_key(t["url"])]) for t in truth if got[sample_key(t["url"])] != t["fate"]
    ]
    assert wrong == [] and len(kept) + len(rejects) == N_IMAGES
    assert {"duplicate_image", "download_failed", "not_an_image"} <= {r["reason"] for r in rejects.values()}
    assert all(r["caption"] is None and r["url"] for r in kept.values())


def test_text_only_rows_match_truth(built):
    corpus, root, _ = built
    kept, rejects = _tables(root, "texts", 1)
    captions = pq.read_table(corpus / "texts.parquet").column("caption").to_pylist()
    truth = pq.read_table(corpus / "texts_truth.parquet").to_pylist()
    wrong = []
    for i, (caption, t) in enumerate(zip(captions, truth)):
        key = text_key(i, caption)
        got = "keep" if key in kept else rejects[key]["reason"]
        if got != t["fate"] or (got == KEEP and kept[key]["caption"] != t["clean_caption"]):
            wrong.append((i, t["category"], t["fate"], got))
    assert wrong == [] and len(kept) + len(rejects) == N_TEXTS
    assert {r["reason"] for r in rejects.values()} >= {"not_english", "repeated_caption", "empty_caption"}
    assert any("<person>" in r["caption"] for r in kept.values())
    assert all(r["url"] is None and r["orig_width"] is None for r in kept.values())


@pytest.mark.parametrize(
    ("dataset", "stages"),
    [("images", ["source", "text", "download", "image", "dedup", "shard"]), ("texts", ["source", "text", "shard"])],
)
def test_funnel_is_conserved(built, dataset, stages):
    _, root, _ = built
    m = _manifest(root, dataset, 1)
    f = m["funnel"]
    n = N_IMAGES if dataset == "images" else N_TEXTS
    assert [s["stage"] for s in f["stages"]] == stages
    assert f["in"] == n == f["kept"] + sum(f["rejected"].values())
    for prev, nxt in zip(f["stages"], f["stages"][1:]):
        assert prev["kept"] == nxt["in"] and nxt["in"] == nxt["kept"] + sum(nxt["rejected"].values())
    if dataset == "images":
        assert f["stages"][1] == {"stage": "text", "in": n, "kept": n, "rejected": {}}  # no caption is judged
    kept, rejects = _tables(root, dataset, 1)
    assert len(kept) == m["samples"] == f["kept"] and len(rejects) == n - f["kept"]
    assert not set(kept) & set(rejects)
    assert {r["stage"] for r in rejects.values()} <= set(stages[1:-1])  # a stage this modality runs
    assert json.loads((root / dataset / "v1" / "stats.json").read_text()) == f


@pytest.mark.parametrize(("dataset", "members"), [("images", ["jpg", "json"]), ("texts", ["txt", "json"])])
def test_shards_hold_the_modality_members(built, dataset, members):
    import webdataset as wds

    _, root, _ = built
    m = _manifest(root, dataset, 1)
    samples = _samples(root, dataset, m)
    kept, _ = _tables(root, dataset, 1)
    assert [s[1] for s in samples] == [members] * len(samples)
    assert len(samples) == len({s[0] for s in samples}) == m["samples"] and {s[0] for s in samples} == set(kept)
    for key, _, data in samples:
        meta = json.loads(data["json"])
        if dataset == "images":
            assert set(meta) == {"url", "orig_width", "orig_height", "width", "height", "phash"}
            assert key == sample_key(meta["url"]) and min(meta["width"], meta["height"]) <= 256
        else:
            assert set(meta) == {"lang", "lang_score", "english_ratio", "person_substituted"}
            assert data["txt"].decode("utf-8") == kept[key]["caption"]
    first = root / dataset / m["shards"][0]["path"]
    got = next(iter(wds.WebDataset(str(first), shardshuffle=False)))
    assert set(got) - {"__key__", "__url__", "__local_path__"} == set(members)
    assert m["schema"] == {"keys": sorted(members), "views": {"image": [], "text": []}}


def test_manifests_record_the_modality_and_its_stats(built):
    _, root, _ = built
    images, texts = _manifest(root, "images", 1), _manifest(root, "texts", 1)
    assert (images["modality"], texts["modality"]) == ("image", "text")
    assert sum(images["stats"]["image_short_side"]["counts"]) == images["samples"]
    assert sum(images["stats"]["caption_words"]["counts"]) == 0 and images["stats"]["person_share"] == 0.0
    assert (
        sum(texts["stats"]["caption_words"]["counts"]) == texts["samples"] == sum(texts["stats"]["lid_score"]["counts"])
    )
    assert sum(texts["stats"]["image_short_side"]["counts"]) == 0 and texts["stats"]["person_share"] > 0
    assert images["config"]["source"]["modality"] == "image"


@pytest.mark.parametrize(
    ("dataset", "views", "members"),
    [
        ("images", {"image": ["g0.jpg", "g1.jpg"], "text": []}, ["jpg", "json", "g0.jpg", "g1.jpg"]),
        ("texts", {"image": [], "text": ["eda0.txt", "eda1.txt"]}, ["txt", "json", "eda0.txt", "eda1.txt"]),
    ],
)
def test_view_versions_keep_the_modality(built, dataset, views, members):
    _, root, _ = built
    m = _manifest(root, dataset, 2)
    assert m["modality"] == _manifest(root, dataset, 1)["modality"] and m["parents"] == [f"{dataset}@1"]
    assert m["schema"] == {"keys": sorted(members), "views": views}
    samples = _samples(root, dataset, m)
    assert len(samples) == m["samples"] == _manifest(root, dataset, 1)["samples"]
    assert all(exts == members for _, exts, _ in samples)


def test_image_refresh_adds_only_the_new_rows(built):
    _, root, extra = built
    m = _manifest(root, "images", 3)
    v1 = _manifest(root, "images", 1)
    assert (m["modality"], m["parents"]) == ("image", ["images@1"])
    assert m["shards"][: len(v1["shards"])] == v1["shards"]
    kept1, rej1 = _tables(root, "images", 1)
    kept3, rej3 = _tables(root, "images", 3)
    assert {k: kept3[k] for k in kept1} == kept1 and {k: rej3[k] for k in rej1} == rej1
    assert [sample_key(u) in kept3 for u in extra[:2]] == [True, True]
    assert rej3[sample_key(extra[2])]["reason"] == "duplicate_image"  # a copy of a carried image
    f = m["funnel"]
    assert f["in"] == N_IMAGES + 3 == len(kept3) + len(rej3) and f["kept"] == m["samples"] == len(kept3)
    assert _manifest(root, "images", 4)["parents"] == ["images@3"]  # its view version followed


def test_text_refresh_adds_only_the_new_rows_and_keeps_the_old_keys(built):
    corpus, root, _ = built
    m = _manifest(root, "texts", 3)
    assert (m["modality"], m["parents"]) == ("text", ["texts@1"])
    kept1, rej1 = _tables(root, "texts", 1)
    kept3, rej3 = _tables(root, "texts", 3)
    assert {k: kept3[k] for k in kept1} == kept1 and {k: rej3[k] for k in rej1} == rej1
    new = [text_key(N_TEXTS + i, c) for i, c in enumerate(NEW_CAPTIONS)]
    got = ["keep" if k in kept3 else rej3[k]["reason"] for k in new]
    assert got == ["keep", "empty_caption", "meaningless_caption", "keep"]
    assert m["funnel"]["in"] == N_TEXTS + len(NEW_CAPTIONS) == len(kept3) + len(rej3)
    assert [s["stage"] for s in m["funnel"]["stages"]] == ["source", "text", "shard"]


def test_no_raw_name_in_the_text_only_version(built):
    corpus, root, _ = built
    captions = pq.read_table(corpus / "texts.parquet").column("caption").to_pylist()
    truth = pq.read_table(corpus / "texts_truth.parquet").to_pylist()
    names = set()
    for caption, t in zip(captions, truth):
        if t["category"] == "person_name" and "<person>" in t["clean_caption"]:
            pre, post = t["clean_caption"].split("<person>", 1)
            names.add(caption[len(pre) : len(caption) - len(post)])
    assert len(names) >= 3 and all(" " in n for n in names)
    leaks = [
        (str(p), n) for p in (root / "texts").rglob("*") if p.is_file() for n in names if n.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_catalog_list_and_show_name_the_modality(built, capsys):
    _, root, _ = built
    capsys.readouterr()
    assert catalog_run(["--root", str(root), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["version", "modality"]
    modality = {line.split()[0]: line.split()[1] for line in lines[2:]}
    assert modality == {
        **{f"images@{v}": "image" for v in (1, 2, 3, 4)},
        **{f"texts@{v}": "text" for v in (1, 2, 3, 4)},
    }
    for ref, word in (("images@1", "image"), ("texts@latest", "text")):
        assert catalog_run(["--root", str(root), "show", ref]) == 0
        assert f"  modality {word}  created " in capsys.readouterr().out.splitlines()[0]
    assert catalog_run(["--root", str(root), "verify", "texts@3"]) == 0
