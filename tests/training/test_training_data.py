"""Streaming shards: rank/worker split without overlap, batch contents, exact resume."""

import collections
import itertools

import pytest
import torch
from support.training_corpus import write_version

from training.data import (
    BatchSpec,
    MissingMembers,
    ShardStream,
    check_members,
    make_loader,
    raw_samples,
    resolve_shards,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_version(root, "shapes", n=96, seed=1, per_shard=12, views=True)
    return str(root)


def keys_of(stream, batches):
    loader = make_loader(stream)
    out = []
    for _, batch in zip(range(batches), loader):
        out.append(batch["__key__"])
    return out


@pytest.mark.parametrize("per_shard", [12, 48])  # 8 shards >= 4 slots; 2 shards < 4 slots
def test_ranks_and_loader_workers_never_read_the_same_sample_in_an_epoch(tmp_path, per_shard):
    write_version(tmp_path, "s", n=96, seed=2, per_shard=per_shard)
    manifest, urls = resolve_shards(str(tmp_path), "s@latest")
    spec = BatchSpec(image_size=32)
    seen = collections.Counter()
    for rank in range(2):
        stream = ShardStream(urls, spec, batch_size=4, samples_per_epoch=96, rank=rank, world=2, num_workers=2)
        assert stream.batches_per_epoch == 12
        for keys in keys_of(stream, stream.batches_per_epoch):
            seen.update(keys)
    assert len(seen) == 96 and max(seen.values()) == 1


def test_batch_carries_image_tokens_mask_declared_members_and_sampled_captions(corpus):
    _, urls = resolve_shards(corpus, "shapes@1")
    spec = BatchSpec(
        image_size=32,
        caption_from=("txt", "bt.*"),
        members=("g0.jpg", "l0.jpg", "eda0.txt"),
        image_sizes=(("l*.jpg", 16),),
    )
    batch = next(iter(make_loader(ShardStream(urls, spec, batch_size=16, samples_per_epoch=96, num_workers=1))))
    assert batch["image"].shape == (16, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["g0.jpg"].shape == (16, 3, 32, 32)
    assert batch["l0.jpg"].shape == (16, 3, 16, 16)
    assert batch["text"].shape == (16, 77) and batch["eda0.txt"].shape == (16, 77)
    assert batch["eda0.txt:mask"].dtype == torch.bool and batch["eda0.txt:mask"][:, 0].all()
    lengths = batch["text_mask"].sum(1)
    assert (batch["text"][torch.arange(16), lengths - 1] == 49407).all()  # last real token is EOT
    sources = {c.startswith("there is") for c in batch["caption"]}
    assert sources == {True, False}  # original and back-translation both drawn


def test_views_are_decoded_only_when_declared(corpus):
    _, urls = resolve_shards(corpus, "shapes@1")
    spec = BatchSpec(image_size=32)
    batch = next(iter(make_loader(ShardStream(urls, spec, batch_size=4, samples_per_epoch=96, num_workers=0))))
    assert set(batch) == {"__key__", "caption", "image", "modality", "text", "text_mask"}
    sample = next(raw_samples(urls, spec.read()))
    assert set(sample) == {"__key__", "__url__", "jpg", "txt"}  # views are not even read


def test_pattern_member_draws_one_matching_member_per_sample(corpus):
    _, urls = resolve_shards(corpus, "shapes@1")
    spec = BatchSpec(image_size=32, members=("bt.*", "*.jpg"))
    batch = next(iter(make_loader(ShardStream(urls, spec, batch_size=8, samples_per_epoch=96, num_workers=0))))
    assert batch["bt.*"].shape == (8, 77) and batch["bt.*:mask"].shape == (8, 77)
    assert batch["*.jpg"].shape == (8, 3, 32, 32)


def test_check_members_names_objective_and_missing_members(tmp_path, corpus):
    plain = write_version(tmp_path, "plain", n=8, seed=3, per_shard=8, back_translation=False)
    assert plain["schema"]["views"] == {"image": [], "text": []}
    check_members(plain, {"clip": ("jpg", "txt")}, ["txt", "bt.*"])
    with pytest.raises(
        MissingMembers,
        match=r"dataset plain@1 lacks members: objective 'mvs' reads g0\.jpg, bt\.\*"
        r" \(it has jpg, json, txt\); it has no views",
    ):
        check_members(plain, {"clip": ("jpg", "txt"), "mvs": ("g0.jpg", "bt.*")}, ["txt"])
    with pytest.raises(MissingMembers, match=r"data.caption_from \['bt.\*'\] matches no member"):
        check_members(plain, {}, ["bt.*"])
    views, _ = resolve_shards(corpus, "shapes@1")
    check_members(views, {"mvs": ("g0.jpg", "l*.jpg", "eda0.txt", "bt.*")}, ["txt"])


def test_resume_from_a_batch_position_continues_the_exact_stream(corpus):
    _, urls = resolve_shards(corpus, "shapes@1")
    spec = BatchSpec(image_size=32)
    args = dict(batch_size=4, samples_per_epoch=48, num_workers=2, seed=3)
    full = keys_of(ShardStream(urls, spec, **args), 20)  # crosses the epoch boundary at 12
    for start in (5, 12, 13):
        assert keys_of(ShardStream(urls, spec, start_batch=start, **args), 20 - start) == full[start:]
    assert full[:12] != full[12:24]  # next epoch reshuffled


def test_a_resumed_stream_repeats_every_sampled_caption_view_and_pixel(corpus):
    """Not only the samples: the caption drawn from `caption_from`, the view drawn for a pattern
    member and every tensor of each batch are those of the uninterrupted stream."""
    _, urls = resolve_shards(corpus, "shapes@1")
    spec = BatchSpec(image_size=32, caption_from=("txt", "bt.*", "eda*.txt"), members=("g*.jpg",))
    args = dict(batch_size=4, samples_per_epoch=48, num_workers=2, seed=3, shuffle_buffer=8)
    full = list(itertools.islice(make_loader(ShardStream(urls, spec, **args)), 16))
    captions = {c for b in full for c in b["caption"]}
    assert any(c.startswith("there is") for c in captions) and any(" the " not in c for c in captions)  # bt, eda
    for start in (5, 12):
        resumed = list(itertools.islice(make_loader(ShardStream(urls, spec, start_batch=start, **args)), 16 - start))
        for a, b in zip(full[start:], resumed, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                assert torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k], (start, k)


def test_missing_member_names_sample_and_shard(corpus):
    _, urls = resolve_shards(corpus, "shapes@1")
    stream = ShardStream(
        urls,
        BatchSpec(image_size=32, members=("eda0.txt", "eda1.txt")),
        batch_size=4,
        samples_per_epoch=48,
        num_workers=0,
    )
    with pytest.raises(KeyError, match=r"shard-0000\d\d\.tar: missing member 'eda1.txt'"):
        next(iter(make_loader(stream)))
