"""One shard format: what `support.versions` writes (through catalog.shards) reads the same
with plain `tarfile`, `tar -tf`, `webdataset` and `catalog.shards.iter_samples`."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
import webdataset as wds
from support.training_corpus import write_version

from catalog import versions
from catalog.shards import ShardError, iter_samples, split_name


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> tuple[str, dict]:
    root = str(tmp_path_factory.mktemp("data"))
    manifest = write_version(root, "shapes", n=7, seed=4, per_shard=7, views=True)
    (uri,) = versions.shard_uris(root, manifest)
    return uri, manifest


def by_tarfile(uri: str) -> list[tuple[str, dict[str, bytes]]]:
    out: list[tuple[str, dict[str, bytes]]] = []
    with tarfile.open(uri) as tar:
        for info in tar:
            key, _, ext = os.path.basename(info.name).partition(".")
            if not out or out[-1][0] != key:
                out.append((key, {}))
            out[-1][1][ext] = tar.extractfile(info).read()
    return out


def test_tarfile_tar_webdataset_and_iter_samples_agree(shard) -> None:
    uri, manifest = shard
    ours = list(iter_samples(uri))
    assert len(ours) == 7 == manifest["samples"]
    assert ours == by_tarfile(uri)
    names = subprocess.run(["tar", "-tf", uri], capture_output=True, text=True, check=True).stdout.split()
    assert names == [f"{key}.{ext}" for key, members in ours for ext in members]
    theirs = [
        (s["__key__"], {k: v for k, v in s.items() if not k.startswith("__")})
        for s in wds.WebDataset(uri, shardshuffle=False)
    ]
    assert theirs == ours
    first = ours[0][1]
    assert list(first) == [
        "jpg",
        "txt",
        "json",
        "bt.spa.txt",
        "g0.jpg",
        "g1.jpg",
        "l0.jpg",
        "eda0.txt",
    ]  # docs/formats.md order
    meta = json.loads(first["json"])
    assert {
        "url",
        "orig_width",
        "orig_height",
        "width",
        "height",
        "lang",
        "lang_score",
        "english_ratio",
        "phash",
        "person_substituted",
    } <= set(meta)
    assert manifest["schema"] == {
        "keys": sorted(first),
        "views": {"image": ["g0.jpg", "g1.jpg", "l0.jpg"], "text": ["bt.spa.txt", "eda0.txt"]},
    }


def test_member_selection_by_name_and_pattern(shard) -> None:
    uri, _ = shard
    full = list(iter_samples(uri))
    picked = list(iter_samples(uri, members=("jpg", "bt.*", "*.jpg")))
    assert [k for k, _ in picked] == [k for k, _ in full]
    for (_, everything), (_, some) in zip(full, picked):
        assert list(some) == ["jpg", "bt.spa.txt", "g0.jpg", "g1.jpg", "l0.jpg"]
        assert all(some[m] == everything[m] for m in some)
    assert all(members == {} for _, members in iter_samples(uri, members=()))


def test_unreadable_or_missing_shards_raise_shard_error(tmp_path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ShardError, match="bad.tar: not a readable tar shard"):
        list(iter_samples(str(bad)))
    with pytest.raises(ShardError, match="gone.tar: shard is missing"):
        list(iter_samples(str(tmp_path / "gone.tar")))
    assert split_name("abc.bt.spa.txt") == ("abc", "bt.spa.txt") and split_name("noext") is None
