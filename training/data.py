"""Streaming a dataset version's WebDataset shards into training batches.

Sharding (per "epoch" of `samples_per_epoch` samples): the shard list is shuffled with
(seed, epoch) and dealt out to the `world * num_workers` slots (Ray worker rank x
dataloader worker), so within an epoch no two slots read the same sample. With fewer
shards than slots every slot reads every shard and keeps the samples whose position
modulo the slot count is its own. Each slot resamples its own shards (reshuffled each
pass) until it has produced its quota of batches. Shards are read by `catalog.shards`
(the one tar reader), only the members the batch needs; decoding, caption sampling,
tokenisation and batching run inside the dataloader workers.

What a batch carries is what the configured objectives declare (`BatchSpec.members`, see
`training.objectives.base`): `image` (from `data.image_from`, default `jpg`), `text` +
`text_mask` (the caption, sampled uniformly from the members matching `data.caption_from`,
FILIP Sec. 3.2) and every other declared member under its own name, plus `modality`. A
version's modality (manifest `modality`: `pair`, `image` or `text`) decides which of
`image` / `text` exist: an image-only batch has no caption, a text-only one no image. `check_members` compares the declarations with
the version's manifest schema before training starts.

Position: the stream is a pure function of (seed, rank, world, workers, batches consumed),
so resuming skips the consumed raw samples (no decoding) and continues exactly.
"""

from __future__ import annotations

import fnmatch
import io
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from catalog import versions
from catalog.errors import UserError
from catalog.manifest import modality_of
from catalog.shards import iter_samples
from training import tokenizer
from training.objectives.base import mask_key

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)  # CLIP's normalisation
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
MODEL_INPUTS = ("jpg", "txt")  # decoded into `image` and `text`/`text_mask` (the caption)
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


class MissingMembers(UserError, LookupError):
    """The dataset version lacks batch members the configured objectives read."""


@dataclass(frozen=True)
class BatchSpec:
    """What a batch carries: the model inputs plus the members the objectives declare."""

    image_size: int
    caption_from: tuple[str, ...] = ("txt",)
    members: tuple[str, ...] = ()  # names or patterns beyond jpg/txt
    image_sizes: tuple[tuple[str, int], ...] = ()  # (pattern, size) for image members
    modality: str = "pair"
    image_from: str = "jpg"

    @property
    def has_image(self) -> bool:
        return self.modality in ("pair", "image")

    @property
    def has_text(self) -> bool:
        return self.modality in ("pair", "text")

    def read(self) -> tuple[str, ...]:
        """The shard members a sample must be read with (names or patterns)."""
        image = (self.image_from,) if self.has_image else ()
        text = self.caption_from if self.has_text else ()
        return tuple(dict.fromkeys((*image, *text, *self.members)))

    def size_of(self, member: str) -> int:
        return next(
            (size for pattern, size in self.image_sizes if fnmatch.fnmatchcase(member, pattern)), self.image_size
        )


def batch_spec(
    image_size: int,
    caption_from: Iterable[str],
    declared: Mapping[str, Iterable[str]],
    image_sizes: Mapping[str, int] | None = None,
    modality: str = "pair",
    image_from: str = "jpg",
) -> BatchSpec:
    """The BatchSpec of a run: `declared` = the batch members each objective reads (the
    model's image member `image_from` is decoded once, as `image`)."""
    extra = [m for members in declared.values() for m in members if m not in (*MODEL_INPUTS, image_from)]
    return BatchSpec(
        image_size=image_size,
        caption_from=tuple(caption_from),
        members=tuple(dict.fromkeys(extra)),
        image_sizes=tuple((image_sizes or {}).items()),
        modality=modality,
        image_from=image_from,
    )


def is_pattern(member: str) -> bool:
    return any(c in member for c in "*?[")


def check_members(
    manifest: dict[str, Any],
    declared: Mapping[str, Iterable[str]],
    caption_from: Iterable[str],
    image_from: str = "jpg",
) -> None:
    """Raise MissingMembers unless the version's schema has every declared member.

    `declared`: objective name -> members it reads (a pattern needs one matching member);
    a paired or text version's caption needs one member matching `caption_from`, a paired
    or image version's image the member `image_from`.
    """
    keys = list(manifest.get("schema", {}).get("keys", []))
    ref = f"{manifest.get('dataset')}@{manifest.get('version')}"

    def present(member: str) -> bool:
        return any(fnmatch.fnmatchcase(k, member) for k in keys) if is_pattern(member) else member in keys

    modality = modality_of(manifest)
    problems = []
    for name, members in declared.items():
        missing = [m for m in members if m not in MODEL_INPUTS and not present(m)]  # jpg/txt: below
        if missing:
            problems.append(f"objective {name!r} reads {', '.join(missing)}")
    caption_from = list(caption_from)
    if modality != "image" and not any(present(p) for p in caption_from):
        problems.append(f"data.caption_from {caption_from} matches no member")
    if modality != "text" and not present(image_from):
        problems.append(f"data.image_from {image_from!r} is not a member")
    if problems:
        views = manifest.get("schema", {}).get("views", {})
        hint = (
            ""
            if any(views.values())
            else "; it has no views (publish a view version with `python -m pipelines augment`)"
        )
        raise MissingMembers(
            f"dataset {ref} lacks members: {'; '.join(problems)} (it has {', '.join(keys) or 'none'}){hint}"
        )


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


def _matching(sample: dict[str, Any], patterns: Iterable[str]) -> list[str]:
    patterns = tuple(patterns)
    return sorted(k for k in sample if not k.startswith("__") and any(fnmatch.fnmatchcase(k, p) for p in patterns))


def pick_caption(sample: dict[str, Any], patterns: tuple[str, ...], rng: random.Random) -> str:
    """A caption sampled uniformly from the members matching `patterns` (FILIP Sec. 3.2)."""
    names = _matching(sample, patterns)
    if not names:
        raise KeyError(
            f"sample {sample.get('__key__')} in {sample.get('__url__')}: no caption member matching {list(patterns)}"
        )
    return _member(sample, rng.choice(names)).decode("utf-8")


def _member(sample: dict[str, Any], member: str) -> bytes:
    if member not in sample:
        raise KeyError(f"sample {sample.get('__key__')} in {sample.get('__url__')}: missing member {member!r}")
    return sample[member]


def _pick(sample: dict[str, Any], member: str, rng: random.Random) -> tuple[str, bytes]:
    """(name, bytes) of `member`; for a pattern, of one matching member drawn uniformly."""
    if not is_pattern(member):
        return member, _member(sample, member)
    names = _matching(sample, (member,))
    if not names:
        raise KeyError(f"sample {sample.get('__key__')} in {sample.get('__url__')}: no member matching {member!r}")
    name = rng.choice(names)
    return name, sample[name]


def _kind(member: str) -> str:
    ext = member.rsplit(".", 1)[-1]
    return "image" if ext in IMAGE_EXTS else ext


def decode_batch(samples: list[dict[str, Any]], spec: BatchSpec, rng: random.Random) -> dict[str, Any]:
    """Raw samples -> a batch: image, text + text_mask, caption, and each declared member.

    Declared members by kind: images -> float [B, 3, S, S]; txt -> token ids [B, L] and the
    padding mask under `mask_key(member)`; json -> list of objects; others -> list of bytes.
    """
    batch: dict[str, Any] = {"__key__": [s["__key__"] for s in samples], "modality": spec.modality}
    if spec.has_text:
        captions = [pick_caption(s, spec.caption_from, rng) for s in samples]
        batch["caption"] = captions
        batch["text"], batch["text_mask"] = tokenizer.tokenize(captions)
    if spec.has_image:
        batch["image"] = torch.stack([load_image(_member(s, spec.image_from), spec.image_size) for s in samples])
    for member in spec.members:
        picked = [_pick(s, member, rng) for s in samples]
        kinds = {_kind(name) for name, _ in picked}
        if len(kinds) > 1:
            raise ValueError(
                f"batch member {member!r} matches members of different kinds: {sorted({n for n, _ in picked})}"
            )
        kind, raw = kinds.pop(), [data for _, data in picked]
        if kind == "image":
            size = spec.size_of(member)
            batch[member] = torch.stack([load_image(data, size) for data in raw])
        elif kind == "txt":
            batch[member], batch[mask_key(member)] = tokenizer.tokenize([data.decode("utf-8") for data in raw])
        elif kind == "json":
            batch[member] = [json.loads(data) for data in raw]
        else:
            batch[member] = raw
    return batch


def raw_samples(urls: list[str], members: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Samples of the given shards in order, as dicts of member bytes plus `__key__` and
    `__url__` (read by `catalog.shards.iter_samples`; `members`: names or patterns, None: all)."""
    wanted = None if members is None else tuple(members)
    for url in urls:
        for key, found in iter_samples(url, wanted):
            yield {"__key__": key, "__url__": url, **found}


class ShardStream(IterableDataset):
    """An endless stream of batches for one Ray worker (see the module docstring)."""

    def __init__(
        self,
        urls: list[str],
        spec: BatchSpec,
        batch_size: int,
        samples_per_epoch: int,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 1,
        seed: int = 0,
        start_batch: int = 0,
        shuffle_buffer: int = 256,
    ) -> None:
        if not urls:
            raise ValueError("dataset has no shards")
        self.urls, self.spec, self.batch_size = list(urls), spec, batch_size
        self.rank, self.world, self.num_workers = rank, world, max(1, num_workers)
        self.seed, self.start_batch, self.shuffle_buffer = seed, start_batch, shuffle_buffer
        self.batches_per_worker = samples_per_epoch // (world * batch_size * self.num_workers)
        if self.batches_per_worker < 1:
            raise ValueError(
                f"samples_per_epoch={samples_per_epoch} is smaller than one batch per worker "
                f"({world} ranks x {self.num_workers} loader workers x batch {batch_size})"
            )

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
            own = (s for i, s in enumerate(raw_samples(mine, self.spec.read())) if by_shard or i % slots == slot)
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
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=2 if workers else None,
        # its own generator: starting a loader (a mixture starts each source's when first
        # drawn) must not consume the trainer's RNG, or masking draws differ after a resume
        generator=torch.Generator().manual_seed(stream.seed),
    )
