"""What an evaluation task is: one module under `training/eval/tasks/`, found by its name.

A task is a subclass of `EvalTask` registered with `@EVAL_TASKS.register("name")` and
selected in YAML (`eval.tasks: {zeroshot: {}, retrieval: {scorer: late}}`); its `Options`
(pydantic, unknown keys forbidden) are validated when the config loads. `run(ctx)` gets an
`EvalContext` (the model in eval mode, one eval set, its images encoded once and shared by
every task, a text encoder with a cache) and returns a `TaskResult`: metrics by name, the
chance level of each metric where one exists, files (PNG drawings) and notes (e.g. why a
task did not apply to a set: a real-photo set has no class labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from catalog.registry import Registry
from training.eval.scoring import Encoded
from training.eval.sets import EvalSet


class TaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class TaskResult:
    metrics: dict[str, float] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class EvalContext:
    """One eval set and one model: images encoded once, texts encoded on demand (cached).

    A dual encoder's tokens are its L2-normalised joint-space tokens (late interaction); a
    single-stream model's are what its multimodal encoder continues from: the image tokens
    after ln_post (CLS first) and the captions' unimodal states (`SingleStream.fusion_input`).
    """

    def __init__(self, model: torch.nn.Module, data: EvalSet, late: bool, device: str | torch.device, batch: int):
        self.model, self.data, self.late, self.device, self.batch = model, data, late, device, batch
        self.family = getattr(model, "family", "dual_encoder")
        self._images: Encoded | None = None
        self._texts: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def images(self) -> Encoded:
        if self._images is None:
            feats, toks = [], []
            for i in range(0, len(self.data.images), self.batch):
                f, t = self.model.encode_image(self.data.images[i : i + self.batch].to(self.device), tokens=True)
                feats.append(f.float().cpu())
                toks.append(t.float().cpu())
            tokens = torch.cat(toks)
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
            self._images = Encoded(torch.cat(feats), tokens, mask)
        return self._images

    @torch.no_grad()
    def texts(self, texts: list[str]) -> Encoded:
        """Global features, tokens, padding masks and token ids of `texts`."""
        from training import tokenizer

        todo = [t for t in dict.fromkeys(texts) if t not in self._texts]
        for i in range(0, len(todo), self.batch):
            chunk = todo[i : i + self.batch]
            ids, mask = tokenizer.tokenize(chunk)
            f, t = self.model.encode_text(ids.to(self.device), tokens=True)
            for j, text in enumerate(chunk):
                self._texts[text] = (f[j].float().cpu(), t[j].float().cpu(), mask[j], ids[j])
        rows = [self._texts[t] for t in texts]
        return Encoded(*(torch.stack([r[k] for r in rows]) for k in range(4)))

    @torch.no_grad()
    def word_patch_scores(self, image: int, texts: Encoded, row: int) -> torch.Tensor:
        """[L, grid*grid]: how much each token of caption `row` of `texts` goes with each patch of
        image `image`. A dual encoder: the token-patch cosine FILIP's late interaction maximises
        (FILIP §4.5); a single-stream model: the cross-attention of its last multimodal block,
        averaged over heads, from the caption's tokens to the patches (its CLS column left out)."""
        images = self.images()
        if self.family != "single_stream":
            return texts.tokens[row] @ images.tokens[image].T
        text_in = self.model.fusion_input(texts.ids[row : row + 1], texts.tokens[row : row + 1])
        fused = self.model.fuse(
            text_in.to(self.device),
            texts.mask[row : row + 1].to(self.device),
            images.tokens[image : image + 1].to(self.device),
            return_attention=True,
        )
        return fused["cross_attention"][0, :, 1:].float().cpu()


class EvalTask:
    name: ClassVar[str] = ""
    Options: ClassVar[type[TaskOptions]] = TaskOptions

    def __init__(self, options: TaskOptions) -> None:
        self.options = options

    def run(self, ctx: EvalContext) -> TaskResult:
        raise NotImplementedError


EVAL_TASKS: Registry[type[EvalTask]] = Registry("eval task")


def register(name: str):
    def add(cls: type[EvalTask]) -> type[EvalTask]:
        cls.name = name
        return EVAL_TASKS.register(name)(cls)

    return add


def options_of(name: str, options: dict[str, Any]) -> TaskOptions:
    return EVAL_TASKS.get(name).Options.model_validate(options)
