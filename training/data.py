"""Streaming a dataset version's WebDataset shards into training batches.

Sharding (per "epoch" of `samples_per_epoch` samples): the shard list is shuffled with
(seed, epoch) and dealt out to the `world * num_workers` slots (Ray worker rank x
dataloader worker), so within an epoch no two slots read the same sample. With fewer
shards than slots every slot reads every shard and keeps the samples whose position
modulo the slot count is its own. Each slot resamples its own shards (reshuffled each
pass) until it has produced its quota of batches. Decoding, view selection, tokenisation
and batching run inside the dataloader workers.

Position: the stream is a pure function of (seed, rank, world, workers, batches consumed),
so resuming skips the consumed raw samples (no decoding) and continues exactly.
"""

from __future__ import annotations

import fnmatch
import io
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset import tariterators

from catalog import versions
from catalog import storage
from training import tokenizer

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)  # CLIP's normalisation
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


@dataclass(frozen=True)
class BatchSpec:
    """What a batch carries (the union of what the configured objectives read)."""

    image_size: int
    caption_from: tuple[str, ...] = ("txt",)
    eda_views: int = 0
    global_views: int = 0
    local_views: int = 0
    local_size: int = 96


def resolve_shards(root: str, ref: str) -> tuple[dict[str, Any], list[str]]:
    """The manifest and shard URIs of `ref` (NAME@VERSION or NAME@latest) under `root`."""
    manifest = versions.load_manifest(root, ref)
    return manifest, versions.shard_uris(root, manifest)


def load_image(data: bytes, size: int) -> torch.Tensor:
    """JPEG bytes -> [3, size, size] float: shorter side resized to `size`, centre crop, CLIP norm."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return torch.from_numpy(((arr - MEAN) / STD).transpose(2, 0, 1).copy())


def pick_caption(sample: dict[str, Any], patterns: tuple[str, ...], rng: random.Random) -> str:
    """A caption sampled uniformly from the members matching `patterns` (FILIP Sec. 3.2)."""
    names = sorted(k for k in sample if not k.startswith("__") and any(fnmatch.fnmatchcase(k, p) for p in patterns))
    if not names:
        raise KeyError(f"sample {sample.get('__key__')} in {sample.get('__url__')}: no caption member matching {list(patterns)}")
    return _text(sample, rng.choice(names))


def _text(sample: dict[str, Any], member: str) -> str:
    try:
        return sample[member].decode("utf-8")
    except KeyError:
        raise KeyError(f"sample {sample.get('__key__')} in {sample.get('__url__')}: missing member {member!r}") from None


def _member(sample: dict[str, Any], member: str) -> bytes:
    if member not in sample:
        raise KeyError(f"sample {sample.get('__key__')} in {sample.get('__url__')}: missing member {member!r}")
    return sample[member]


def decode_batch(samples: list[dict[str, Any]], spec: BatchSpec, rng: random.Random) -> dict[str, Any]:
    """Raw samples -> a batch of tensors (image, text + text_mask, optional views)."""
    captions = [pick_caption(s, spec.caption_from, rng) for s in samples]
    text, text_mask = tokenizer.tokenize(captions)
    batch: dict[str, Any] = {
        "__key__": [s["__key__"] for s in samples],
        "caption": captions,
        "image": torch.stack([load_image(_member(s, "jpg"), spec.image_size) for s in samples]),
        "text": text,
        "text_mask": text_mask,
    }
    if spec.global_views:
        batch["global_views"] = torch.stack([
            torch.stack([load_image(_member(s, f"g{i}.jpg"), spec.image_size) for i in range(spec.global_views)])
            for s in samples])
    if spec.local_views:
        batch["local_views"] = torch.stack([
            torch.stack([load_image(_member(s, f"l{i}.jpg"), spec.local_size) for i in range(spec.local_views)])
            for s in samples])
    if spec.eda_views:
        eda = [_text(s, f"eda{i}.txt") for s in samples for i in range(spec.eda_views)]
        ids, mask = tokenizer.tokenize(eda)
        batch["eda"] = ids.view(len(samples), spec.eda_views, -1)
        batch["eda_mask"] = mask.view(len(samples), spec.eda_views, -1)
    return batch


def raw_samples(urls: list[str]) -> Iterator[dict[str, Any]]:
    """Samples (dicts of member bytes) of the given shards, in order (webdataset's tar readers)."""
    streams = ({"url": url, "stream": storage.open_read(url)} for url in urls)
    yield from tariterators.group_by_keys(tariterators.tar_file_expander(streams))


class ShardStream(IterableDataset):
    """An endless stream of batches for one Ray worker (see the module docstring)."""

    def __init__(self, urls: list[str], spec: BatchSpec, batch_size: int, samples_per_epoch: int,
                 rank: int = 0, world: int = 1, num_workers: int = 1, seed: int = 0,
                 start_batch: int = 0, shuffle_buffer: int = 256) -> None:
        if not urls:
            raise ValueError("dataset has no shards")
        self.urls, self.spec, self.batch_size = list(urls), spec, batch_size
        self.rank, self.world, self.num_workers = rank, world, max(1, num_workers)
        self.seed, self.start_batch, self.shuffle_buffer = seed, start_batch, shuffle_buffer
        self.batches_per_worker = samples_per_epoch // (world * batch_size * self.num_workers)
        if self.batches_per_worker < 1:
            raise ValueError(f"samples_per_epoch={samples_per_epoch} is smaller than one batch per worker "
                             f"({world} ranks x {self.num_workers} loader workers x batch {batch_size})")

    @property
    def batches_per_epoch(self) -> int:
        """Batches one Ray worker takes per epoch."""
        return self.batches_per_worker * self.num_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None and info.num_workers != self.num_workers:
            raise ValueError(f"ShardStream built for {self.num_workers} loader workers, run with {info.num_workers}")
        # The DataLoader takes batches round-robin from its workers, starting at worker 0, and
        # global batch k is produced by "logical" worker k % W: so after resuming at batch s,
        # physical worker w plays logical worker (w + s) % W.
        role = (worker + self.start_batch) % self.num_workers
        done = max(0, (self.start_batch - role + self.num_workers - 1) // self.num_workers)
        epoch, skip = divmod(done, self.batches_per_worker)
        while True:
            yield from self._epoch(epoch, role, skip)
            epoch, skip = epoch + 1, 0

    def _epoch(self, epoch: int, worker: int, skip_batches: int) -> Iterator[dict[str, Any]]:
        slot, slots = self.rank * self.num_workers + worker, self.world * self.num_workers
        rng = random.Random(f"{self.seed}/{epoch}/{slot}")
        buffered = self._slot_samples(epoch, slot, slots, rng)
        for _ in range(skip_batches * self.batch_size):
            next(buffered)
        for index in range(skip_batches, self.batches_per_worker):
            chunk = [next(buffered) for _ in range(self.batch_size)]
            yield decode_batch(chunk, self.spec, random.Random(f"{self.seed}/{epoch}/{slot}/b{index}"))

    def _slot_samples(self, epoch: int, slot: int, slots: int, rng: random.Random) -> Iterator[dict[str, Any]]:
        order = list(self.urls)
        random.Random(f"{self.seed}/{epoch}").shuffle(order)
        by_shard = len(order) >= slots
        mine = order[slot::slots] if by_shard else order
        passes = 0
        while True:  # resampled: passes over this slot's shards until the quota is met
            # shared by all slots when they split samples by position, so positions agree
            random.Random(f"{self.seed}/{epoch}/{slot if by_shard else 'all'}/{passes}").shuffle(mine)
            passes += 1
            own = (s for i, s in enumerate(raw_samples(mine)) if by_shard or i % slots == slot)
            yield from _shuffled(own, self.shuffle_buffer, rng)  # within one pass: no repeats


def _shuffled(samples: Iterator[dict[str, Any]], size: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    buf: list[dict[str, Any]] = []
    for sample in samples:
        if len(buf) < size:
            buf.append(sample)
            continue
        i = rng.randrange(size)
        buf[i], sample = sample, buf[i]
        yield sample
    rng.shuffle(buf)
    yield from buf


def make_loader(stream: ShardStream) -> DataLoader:
    """Batches are built in the workers (batch_size=None passes them through)."""
    workers = stream.num_workers
    return DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=False,
                      prefetch_factor=2 if workers else None)
