"""Several dataset versions mixed by weight, one source per batch (FLAVA supplement A.2).

FLAVA samples, for each update, one dataset by its probability (Table A.2: paired 0.70,
image-only 0.15, text-only 0.15) and takes a complete batch from it. Here the draw of step
`s` is a pure function of (seed, s) and the weights (`draw`), so every rank draws the same
source without any broadcast (torchmultimodal's example draws uniformly on rank 0 and
broadcasts it; the paper's weights are configured nowhere there), and the sampler's whole
state is the step. Each source streams through its own `ShardStream` from its own
position (the number of batches already drawn from it), so resuming at step `s` restarts
every source exactly where an uninterrupted run would be: `positions(seed, s, weights)`
replays the draws, and the checkpoint stores both (`MixtureState`), checked on resume.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.data import BatchSpec, ShardStream, make_loader


def draw(seed: int, step: int, weights: Sequence[float]) -> int:
    """The index of the source step `step` takes its batch from."""
    if len(weights) == 1:
        return 0
    return random.Random(f"{seed}/mixture/{step}").choices(range(len(weights)), weights=weights)[0]


def positions(seed: int, step: int, weights: Sequence[float]) -> list[int]:
    """Batches drawn from each source in steps 0 .. step-1."""
    counts = [0] * len(weights)
    if len(weights) == 1:
        return [step]
    for s in range(step):
        counts[draw(seed, s, weights)] += 1
    return counts


@dataclass(frozen=True)
class Source:
    """One dataset version of the run: where its shards are and what its batches carry."""

    ref: str  # NAME@N, resolved
    weight: float
    urls: tuple[str, ...]
    samples: int  # per epoch
    spec: BatchSpec

    @property
    def modality(self) -> str:
        return self.spec.modality


@dataclass
class MixtureState:
    """What the checkpoint stores about the data: the sampler (seed, step) and each source's position."""

    seed: int
    step: int
    positions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sampler": {"seed": self.seed, "step": self.step}, "positions": dict(self.positions)}


class Mixture:
    """Batches for one Ray worker: for each step, a batch of the source `draw` picks."""

    def __init__(
        self,
        sources: Sequence[Source],
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 1,
        seed: int = 0,
        start_step: int = 0,
        shuffle_buffer: int = 256,
    ) -> None:
        self.sources = list(sources)
        self.weights = [s.weight for s in self.sources]
        self.seed, self.step = seed, start_step
        self.counts = positions(seed, start_step, self.weights)
        self.streams = [
            ShardStream(
                list(src.urls),
                src.spec,
                batch_size,
                src.samples,
                rank=rank,
                world=world,
                num_workers=num_workers,
                # one source keeps the single-dataset stream exactly; more get their own seeds
                seed=seed if len(self.sources) == 1 else seed + 1000 * i,
                start_batch=self.counts[i],
                shuffle_buffer=shuffle_buffer,
            )
            for i, src in enumerate(self.sources)
        ]
        self._iters: list[Iterator[dict[str, Any]] | None] = [None] * len(self.sources)

    @property
    def batches_per_epoch(self) -> int:
        """Batches per epoch of the first source (the paired one in FLAVA's recipe)."""
        return self.streams[0].batches_per_epoch

    def state(self) -> MixtureState:
        return MixtureState(self.seed, self.step, {s.ref: n for s, n in zip(self.sources, self.counts, strict=True)})

    def check_resumed(self, saved: dict[str, Any] | None) -> None:
        """The saved data state must be the one this stream replays to (same seed, sources, step)."""
        if not saved:
            return
        mine = self.state().to_dict()
        if saved != mine:
            raise ValueError(f"checkpointed data state {saved} does not match this run's {mine} (config changed?)")

    def __iter__(self) -> Iterator[tuple[Source, dict[str, Any]]]:
        while True:
            i = draw(self.seed, self.step, self.weights)
            if self._iters[i] is None:  # a source's loader workers start when it is first drawn
                self._iters[i] = iter(make_loader(self.streams[i]))
            batch = next(self._iters[i])
            self.counts[i] += 1
            self.step += 1
            yield self.sources[i], batch
