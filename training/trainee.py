"""The trained unit: the model (a dual encoder, or SIMLA's single-stream model) plus its weighted objectives (one module, so DDP
averages every gradient, temperatures and objective heads included, and one state_dict
holds it all: queues, pointers and the visual tokenizer too).

Per step the trainee runs the objectives that accept the batch's modality (`pair`,
`image`, `text`; `Objective.modalities`). It first encodes, once, every input those
objectives read: the model's `image`/`text` and every view they request
(`encode_images` / `encode_texts`), inputs of the same shape concatenated into one pass
(DeCLIP's image and its view go through the ViT together, the caption and its EDA view
through the text tower together). Every objective then gets the outputs, the batch and
the model. Forward time per objective (its own passes and loss) is kept for the logs.

A single-stream model (`model.family: single_stream`) runs its unimodal passes once per
step (`SingleStream.forward`: image and text features, image tokens, text states); its
objectives run their multimodal passes themselves. When an objective reads the momentum
model (`Objective.uses_momentum`) the trainee owns it: a copy of the model made at build
time, outside autograd, updated in place (`momentum_update`, `model.momentum.decay`)
before every training forward and then run on the same inputs (`outputs["momentum"]`);
the distillation weight α (`outputs["alpha"]`) follows the step the training loop sets
(`set_step`), ramped over `model.momentum.alpha_ramp_steps`. The momentum model is a
submodule, so the trainee's state holds it (the checkpoint saves it as `momentum`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from training import tokenizer
from training.config import MomentumConfig, TrainConfig
from training.data import BatchSpec, batch_spec
from training.model import build_model
from training.objectives import OBJECTIVES, ModelInfo, Objective, distill_alpha, momentum_update

AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
TOKEN_OUTPUTS = frozenset({"image_tokens", "text_tokens"})


def model_info(model: nn.Module, cfg: TrainConfig, visual_tokenizer: nn.Module | None = None) -> ModelInfo:
    tok = tokenizer.tokenizer()
    return ModelInfo(
        embed_dim=model.embed_dim,
        vision_width=model.vision_width,
        text_width=model.text_width,
        vocab_size=tokenizer.vocab_size(),
        image_size=model.image_size,
        patch_size=model.patch_size,
        mask_id=tokenizer.mask_id(),
        special_ids=(0, tok.sot_token_id, tok.eot_token_id),
        amp_dtype=AMP_DTYPES[cfg.precision],
        visual_tokenizer=visual_tokenizer,
        stop_ids=tokenizer.stop_ids(),
    )


def build_objectives(cfg: TrainConfig, info: ModelInfo) -> dict[str, Objective]:
    """Objectives named in the config (names and options were validated with the config)."""
    return {name: OBJECTIVES.get(name)(cfg.objective_options(name), info) for name in cfg.objectives}


class Trainee(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        objectives: dict[str, Objective],
        weights: dict[str, float],
        options: dict[str, object],
        image_from: str = "jpg",
        momentum: MomentumConfig | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.family = getattr(model, "family", "dual_encoder")
        self.objectives = nn.ModuleDict(objectives)
        self.momentum_config = momentum or MomentumConfig()
        self.momentum: nn.Module | None = None
        if any(type(o).uses_momentum for o in objectives.values()):
            self.momentum = copy.deepcopy(model).requires_grad_(False)
        self.step = 0  # the training step the next forward belongs to (`set_step`)
        self.steps_per_epoch = 0  # the default length of α's ramp (`set_step`)
        self.weights = dict(weights)
        self.image_alias = image_from  # the member decoded as `image`: requests for it read `image`
        self.requests = {
            name: (type(o).encode_images(options[name]), type(o).encode_texts(options[name]))
            for name, o in objectives.items()
        }
        self.times_ms: dict[str, float] = {}

    def set_step(self, step: int, steps_per_epoch: int = 0) -> None:
        """The step of the next forward (α's ramp follows it) and the epoch's length in steps."""
        self.step, self.steps_per_epoch = int(step), int(steps_per_epoch)

    def alpha(self) -> float:
        """The distillation weight α at the current step (SIMLA §3: 0 -> 0.4 over the first epoch:
        `model.momentum.alpha_ramp_steps`, None = one epoch)."""
        ramp = self.momentum_config.alpha_ramp_steps
        return distill_alpha(self.step, self.steps_per_epoch if ramp is None else ramp, self.momentum_config.alpha)

    def active(self, modality: str) -> list[str]:
        return [name for name, o in self.objectives.items() if modality in o.modalities]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        names = self.active(batch.get("modality", "pair"))
        start = time.perf_counter()
        outputs = self.encode(batch, names)
        self.times_ms = {"encode": (time.perf_counter() - start) * 1e3}
        losses = {}
        for name in names:
            start = time.perf_counter()
            losses[name] = self.objectives[name](outputs, batch, self.model)
            self.times_ms[name] = (time.perf_counter() - start) * 1e3
        total = sum(self.weights[name] * loss for name, loss in losses.items())
        return total, losses

    def encode(self, batch: dict[str, torch.Tensor], names: Iterable[str]) -> dict:
        """Every input the active objectives read, each encoded once (see the module docstring)."""
        names = list(names)
        if self.family == "single_stream":
            return self.encode_single_stream(batch)
        needs = frozenset().union(*(self.objectives[n].needs for n in names))
        image_keys, text_keys = [], []
        if needs & {"image_features", "image_tokens"}:
            image_keys.append("image")
        if needs & {"text_features", "text_tokens"}:
            text_keys.append("text")
        for n in names:
            images, texts = self.requests[n]
            image_keys += ["image" if k == self.image_alias else k for k in images]
            text_keys += texts
        image_keys, text_keys = list(dict.fromkeys(image_keys)), list(dict.fromkeys(text_keys))
        pooled: dict[str, torch.Tensor] = {}
        outputs: dict = {"pooled": pooled}
        for group in _same_shape(batch, image_keys):
            out, toks = self.model.image_pass(torch.cat([batch[k] for k in group]))
            for k, part in zip(group, out.split([batch[k].shape[0] for k in group]), strict=True):
                pooled[k] = part
            if "image_tokens" in needs and "image" in group:
                rows = batch["image"].shape[0]
                start = sum(batch[k].shape[0] for k in group[: group.index("image")])
                outputs["image_tokens"] = F.normalize(toks[start : start + rows] @ self.model.visual.proj, dim=-1)
        want_text_tokens = "text_tokens" in needs
        for group in _same_shape(batch, text_keys):
            ids = torch.cat([batch[k] for k in group])
            out, toks = self.model.text_pass(ids, causal=True, trim=not (want_text_tokens and "text" in group))
            for k, part in zip(group, out.split([batch[k].shape[0] for k in group]), strict=True):
                pooled[k] = part
            if want_text_tokens and "text" in group:
                rows = batch["text"].shape[0]
                start = sum(batch[k].shape[0] for k in group[: group.index("text")])
                outputs["text_tokens"] = F.normalize(
                    toks[start : start + rows] @ self.model.text.text_projection, dim=-1
                )
        features = {k: F.normalize(v, dim=-1) for k, v in pooled.items()}
        if self.image_alias != "image" and "image" in features:
            features[self.image_alias], pooled[self.image_alias] = features["image"], pooled["image"]
        outputs["features"] = features
        if "image" in features:
            outputs["image_features"] = features["image"]
        if "text" in features:
            outputs["text_features"] = features["text"]
        if "text_mask" in batch:
            outputs["text_mask"] = batch["text_mask"]
        return outputs

    def encode_single_stream(self, batch: dict[str, torch.Tensor]) -> dict:
        """The single-stream model's unimodal passes and, when kept, the momentum model's."""
        image, text, mask = batch["image"], batch["text"], batch["text_mask"]
        outputs: dict = self.model(image, text, mask)
        outputs["alpha"] = self.alpha()
        if self.momentum is not None:
            with torch.no_grad():
                if self.training:
                    momentum_update(self.model, self.momentum, self.momentum_config.decay)
                self.momentum.train(self.training)
                outputs["momentum"] = {**self.momentum(image, text, mask), "model": self.momentum}
        return outputs

    def log_metrics(self) -> dict[str, float]:
        out = {}
        for name, objective in self.objectives.items():
            for key, value in objective.log_metrics().items():
                out[f"{key}/{name}"] = value
        return out


def _same_shape(batch: dict[str, torch.Tensor], keys: list[str]) -> list[list[str]]:
    """`keys` grouped by the shape of one row (so each group concatenates into one pass)."""
    groups: dict[tuple, list[str]] = {}
    for k in keys:
        if k not in batch:
            raise KeyError(f"an objective reads batch member {k!r}, which this batch lacks")
        groups.setdefault(tuple(batch[k].shape[1:]), []).append(k)
    return list(groups.values())


def build_trainee(cfg: TrainConfig, visual_tokenizer: nn.Module | None = None) -> Trainee:
    m = cfg.model
    codes = int(visual_tokenizer.codes) if visual_tokenizer is not None and hasattr(visual_tokenizer, "codes") else None
    model = build_model(m.preset, m.embed_dim, m.mask_ratio, m.grad_checkpointing, m.family, codebook_size=codes)
    options = {name: cfg.objective_options(name) for name in cfg.objectives}
    return Trainee(
        model,
        build_objectives(cfg, model_info(model, cfg, visual_tokenizer)),
        {n: s.weight for n, s in cfg.objectives.items()},
        options,
        image_from=cfg.data.image_from,
        momentum=m.momentum,
    )


def run_batch_spec(cfg: TrainConfig, image_size: int, modality: str = "pair") -> BatchSpec:
    """What the run's batches of `modality` carry: the model inputs and every member the
    objectives running on that modality declare."""
    declared = {
        name: members
        for name, members in cfg.objective_members().items()
        if modality in OBJECTIVES.get(name).modalities
    }
    return batch_spec(
        image_size, cfg.data.caption_from, declared, cfg.data.image_sizes, modality, image_from=cfg.data.image_from
    )
