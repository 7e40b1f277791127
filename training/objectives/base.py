"""What an objective is: one module under `training/objectives/`, found by its registered name.

An objective is a small `nn.Module` subclass of `Objective`, registered with
`@OBJECTIVES.register("name")` and weighted in YAML (`objectives: {name: {weight, options}}`):

- `Options`: its options, a subclass of `ObjectiveOptions` (pydantic, unknown keys
  forbidden, frozen). `training.config` validates `objectives.NAME.options` against it when
  the config is loaded, so a typo fails before Ray starts, naming file and key.
- `needs`: the model outputs it reads (`image_features`, `text_features`, `image_tokens`,
  `text_tokens`); the model computes token outputs only when some objective needs them.
- `batch_members` (or `members(options)` when they depend on the options): the batch
  members it reads, named as shard members (docs/formats.md) or fnmatch patterns: `jpg`
  and `txt` are the model's inputs (`image`; `text` + `text_mask`, the caption sampled from
  `data.caption_from`); any other member (`g0.jpg`, `eda0.txt`, `bt.*`) is decoded into the
  batch under its own name: images as float tensors [B, 3, S, S], texts as token ids
  [B, L] with their padding mask under `NAME:mask` (`mask_key`); a pattern draws one
  matching member per sample. The trainer decodes exactly what the configured objectives
  declare, and a version lacking a declared member fails before training.
- `families`: the model families it trains (`model.family`: `dual_encoder`, the default, or
  SIMLA's `single_stream`); a config pairing an objective with another family fails when
  it is loaded. A single-stream model's outputs are `image_features`, `text_features`,
  `image_tokens` (the ViT's tokens after ln_post, CLS first), `text_states` (the unimodal
  text stream) and `text_mask`.
- `uses_momentum`: the objective reads the momentum (EMA) model: the trainee then keeps one
  (`model.momentum`), updates it in place before each training forward and hands over its
  outputs as `outputs["momentum"]` (the same keys, plus `model`: the momentum model itself,
  for the objective's own passes) and the distillation weight α as `outputs["alpha"]`.
- `modalities`: the batch modalities it runs on (`pair`, `image`, `text`; FLAVA A.2 mixes
  unimodal and paired sources, one source per batch): on a batch of another modality the
  objective is skipped that step.
- `encode_images(options)` / `encode_texts(options)`: batch keys (`image`, `text` or a
  declared member such as `g1.jpg`, `eda*.txt`) whose global features the objective reads.
  The trainer encodes every requested key once per step, same-shaped inputs in one
  batched pass, and hands them over as `outputs["features"][key]` (L2-normalised) and
  `outputs["pooled"][key]` (before normalisation): objectives sharing a view share its pass.
- `__init__(options, info)`: `info` is the `ModelInfo` (widths, vocabulary, patch grid,
  special token ids, AMP dtype, the visual tokenizer when one is configured), so an
  objective builds the model parts it adds (projector, MLM head, queue, codebook head);
  the trainer builds only the enabled objectives, so only their parts exist.
- `forward(outputs, batch, model)`: the loss, from the model outputs, the whole batch and
  the model itself (an objective that needs another pass, e.g. a bidirectional masked
  caption, calls the model's methods; the call runs inside the trainer's forward, so
  data-parallel gradient averaging covers it). `log_metrics()` may return extra scalars
  (e.g. a collapse indicator) logged with the losses.

An objective may hold state (temperature, queues and their pointers, a codebook): everything
in its `state_dict` is checkpointed and restored. This package imports only torch, the
standard library, pydantic and its own modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

MASK_SUFFIX = ":mask"
T = TypeVar("T")


def mask_key(member: str) -> str:
    """The batch key of the padding mask of text member `member` (e.g. `eda0.txt:mask`)."""
    return member + MASK_SUFFIX


class ObjectiveOptions(BaseModel):
    """Base of every objective's options: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


@dataclass(frozen=True)
class ModelInfo:
    """What an objective may need to know about the model it trains (see the module docstring)."""

    embed_dim: int = 64  # joint space
    vision_width: int = 96  # ViT token width
    text_width: int = 64  # text transformer width
    vocab_size: int = 49410
    image_size: int = 64
    patch_size: int = 8
    mask_id: int = 49409  # the `<mask>` token
    special_ids: tuple[int, ...] = (0, 49406, 49407)  # never masked: padding, start and end of text
    amp_dtype: torch.dtype | None = None
    visual_tokenizer: nn.Module | None = None  # images [B,3,S,S], grid -> ids [B, grid*grid]
    stop_ids: tuple[int, ...] = ()  # single-token ids of common English stop words (SIMLA's PSL may skip them)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


class Objective(nn.Module):
    """Base class: an optional learnable temperature `log_scale` (init 1/T, clamped) and the interface."""

    Options: ClassVar[type[ObjectiveOptions]] = ObjectiveOptions
    needs: ClassVar[frozenset[str]] = frozenset()
    batch_members: ClassVar[tuple[str, ...]] = ("jpg", "txt")
    modalities: ClassVar[frozenset[str]] = frozenset({"pair"})
    families: ClassVar[frozenset[str]] = frozenset({"dual_encoder"})
    uses_momentum: ClassVar[bool] = False

    def __init__(
        self, init_temperature: float | None = None, max_logit_scale: float = 100.0, min_logit_scale: float = 0.0
    ) -> None:
        super().__init__()
        self.log_scale = (
            None if init_temperature is None else nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        )
        self.max_logit_scale = max_logit_scale
        self.min_logit_scale = min_logit_scale

    @classmethod
    def members(cls, options: ObjectiveOptions) -> tuple[str, ...]:
        """Batch members this objective reads under `options` (default: `batch_members`)."""
        return cls.batch_members

    @classmethod
    def encode_images(cls, options: ObjectiveOptions) -> tuple[str, ...]:
        """Batch keys of images whose features this objective reads (`outputs["features"][key]`)."""
        return ()

    @classmethod
    def encode_texts(cls, options: ObjectiveOptions) -> tuple[str, ...]:
        """Batch keys of texts whose features this objective reads (`outputs["features"][key]`)."""
        return ()

    def logit_scale(self) -> torch.Tensor:
        """exp(log_scale), clamped to [min_logit_scale, max_logit_scale] (no gradient pushes it further)."""
        if self.log_scale is None:
            raise AttributeError(f"{type(self).__name__} has no temperature")
        return self.log_scale.exp().clamp(min=self.min_logit_scale, max=self.max_logit_scale)

    def log_metrics(self) -> dict[str, float]:
        """Extra scalars to log at a log step (computed during the last forward)."""
        return {}

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], model: nn.Module | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


class ObjectiveRegistry:
    """Objective classes by name: `@OBJECTIVES.register("clip")`, `OBJECTIVES.get("clip")`."""

    def __init__(self) -> None:
        self._items: dict[str, type[Objective]] = {}

    def register(self, name: str) -> Callable[[type[Objective]], type[Objective]]:
        def add(cls: type[Objective]) -> type[Objective]:
            if name in self._items:
                raise ValueError(f"objective {name!r} registered twice")
            self._items[name] = cls
            return cls

        return add

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> type[Objective]:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown objective {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Features/scores from AMP back to fp32 (fp64 stays fp64) before a softmax."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


OBJECTIVES = ObjectiveRegistry()
