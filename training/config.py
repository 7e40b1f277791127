"""The typed training config (`python -m training train CONFIG.yaml --set key=value`).

One YAML per experiment (big_vision style); `smoke: true` shrinks any config to a tiny run.
Objectives are named in `objectives:` with a weight and options; each name is looked up in
`training.objectives.OBJECTIVES` and its options validated against the objective's own
`Options` model while the config is validated, so an unknown objective or option fails when
the config is loaded (naming the file and the key, e.g. `objectives.clip.options.init_temprature`),
before Ray starts. The batch members a run reads are the ones its objectives declare
(`objective_members`), checked against the dataset version's schema before training.

Data comes from one version (`dataset: NAME@VERSION`) or a mixture of versions drawn by
weight (`data.mixture: {NAME@VERSION: weight}`; FLAVA A.2: one source per batch, paired
0.70, image-only 0.15, text-only 0.15 in the paper). Each objective runs on the batches of
the modalities it declares (`Objective.modalities`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from catalog.config import Config
from training.eval import EVAL_TASKS
from training.objectives import OBJECTIVES

Precision = Literal["fp32", "bf16", "fp16"]


class MomentumConfig(Config):
    """The momentum (EMA) model of SIMLA §2.2/§3 (ALBEF's momentum distillation): used when an
    objective reads it (`Objective.uses_momentum`: simla_itc, simla_xmm, simla_psl)."""

    decay: float = Field(0.995, ge=0.0, le=1.0)  # ema <- decay * ema + (1 - decay) * model, every step
    alpha: float = Field(0.4, ge=0.0, le=1.0)  # distillation weight of Eq. 3, 7 and 9 after the ramp
    alpha_ramp_steps: int | None = Field(None, ge=0)  # alpha rises linearly over these steps; None: one epoch


class ModelConfig(Config):
    # dual_encoder: CLIP/FILIP/FLIP/DeCLIP/FLAVA; single_stream: SIMLA (training/single_stream.py)
    family: Literal["dual_encoder", "single_stream"] = "dual_encoder"
    preset: str = "tiny"  # a JSON under training/presets/ (single_stream: presets/single_stream/) or a path
    embed_dim: int | None = None  # override the preset's joint-space size (FILIP: 256)
    mask_ratio: float = 0.0  # FLIP: share of image patches dropped per sample
    unmasked_steps: int = 0  # FLIP: the last N steps train without masking
    grad_checkpointing: bool = False
    momentum: MomentumConfig = MomentumConfig()

    @field_validator("mask_ratio")
    @classmethod
    def _ratio(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("mask_ratio must be in [0, 1)")
        return v


class ObjectiveSpec(Config):
    weight: float = 1.0
    options: dict[str, Any] = {}  # checked against the objective's Options (see TrainConfig)


class DataConfig(Config):
    # FLAVA A.2: {NAME@VERSION: weight}; each step draws one source for the whole batch
    mixture: dict[str, float] = {}
    samples_per_epoch: int | None = None  # default: the version's sample count (the first source's)
    num_workers: int = 2  # dataloader worker processes per Ray worker (per source)
    caption_from: list[str] = ["txt"]  # members the caption is sampled from (FILIP: txt + bt.*)
    image_from: str = "jpg"  # the member decoded as the model's `image` (DeCLIP: the view g0.jpg)
    # image members decoded at another size than the model's, by name pattern (local crops)
    image_sizes: dict[str, int] = {"l*.jpg": 96}
    shuffle_buffer: int = 256

    @field_validator("mixture")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        for ref, weight in v.items():
            if "@" not in ref:
                raise ValueError(f"mixture source {ref!r}: name a version as NAME@VERSION (or NAME@latest)")
            if not weight > 0:
                raise ValueError(f"mixture source {ref!r}: weight must be > 0, got {weight}")
        return v


class OptimConfig(Config):
    name: Literal["adamw", "lamb"] = "adamw"
    lr: float = 5e-4
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    sqrt_lr_scaling: bool = False  # FILIP A.3: peak lr = lr * sqrt(global batch / reference)
    sqrt_reference_batch: int = 256
    grad_clip: float | None = 1.0


class ScheduleConfig(Config):
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0


class CheckpointConfig(Config):
    storage: str = "./runs"  # local path or s3://bucket/prefix (Ray Train storage)
    every_steps: int = 100
    keep: int = 2


class RunConfig(Config):
    name: str = "train"
    workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_failures: int = 0
    log_every: int = 10
    log_dir: str = "./runs"  # TensorBoard events, metrics.jsonl, summary.json (local)


DEFAULT_EVAL_TASKS: dict[str, dict[str, Any]] = {"zeroshot": {}, "retrieval": {}, "probe": {}, "alignment": {}}


class EvalConfig(Config):
    sets: list[str] = []  # eval dataset versions (NAME@VERSION), e.g. [demo-eval@latest]
    every_steps: int = 0  # evaluate every N steps during training (0: only at the end)
    tasks: dict[str, dict[str, Any]] = Field(default_factory=lambda: dict(DEFAULT_EVAL_TASKS))
    max_images: int = 1000  # distinct images read per set
    batch_size: int = 128

    @field_validator("sets")
    @classmethod
    def _refs(cls, v: list[str]) -> list[str]:
        for ref in v:
            if "@" not in ref:
                raise ValueError(f"eval set {ref!r}: name a version as NAME@VERSION (or NAME@latest)")
        return v

    @field_validator("tasks", mode="after")
    @classmethod
    def _known_tasks(cls, tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each name is a registered eval task and its options are valid for it."""
        errors: list[InitErrorDetails] = []
        for name, options in tasks.items():
            if name not in EVAL_TASKS:
                known = ", ".join(EVAL_TASKS.names())
                error = PydanticCustomError("unknown_task", "unknown eval task (known: {known})", {"known": known})
                errors.append({"type": error, "loc": (name,), "input": options})
                continue
            options_model = EVAL_TASKS.get(name).Options
            try:
                options_model.model_validate(options)
            except ValidationError as exc:
                errors.extend(_option_error(name, options_model, e, nested=False) for e in exc.errors())
        if errors:
            raise ValidationError.from_exception_data("eval task options", errors)
        return tasks


class TrainConfig(Config):
    dataset: str | None = None  # NAME@VERSION; or data.mixture
    root: str = "./data"
    seed: int = 0
    steps: int = 1000
    batch_size: int = 32  # per Ray worker
    precision: Precision = "fp32"
    smoke: bool = False  # tiny model, few steps: a quick end-to-end check
    model: ModelConfig = ModelConfig()
    objectives: dict[str, ObjectiveSpec] = Field(default_factory=lambda: {"clip": ObjectiveSpec()})
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    run: RunConfig = RunConfig()
    eval: EvalConfig = EvalConfig()

    @field_validator("objectives", mode="after")
    @classmethod
    def _known_objectives(cls, objectives: dict[str, ObjectiveSpec]) -> dict[str, ObjectiveSpec]:
        """Each name is a registered objective and its options are valid for it."""
        errors: list[InitErrorDetails] = []
        for name, spec in objectives.items():
            if name not in OBJECTIVES:
                known = ", ".join(OBJECTIVES.names())
                error = PydanticCustomError("unknown_objective", "unknown objective (known: {known})", {"known": known})
                errors.append({"type": error, "loc": (name,), "input": spec.to_dict()})
                continue
            options_model = OBJECTIVES.get(name).Options
            try:
                options_model.model_validate(spec.options)
            except ValidationError as exc:
                errors.extend(_option_error(name, options_model, e) for e in exc.errors())
        if errors:
            raise ValidationError.from_exception_data("objective options", errors)
        return objectives

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if not self.objectives:
            raise ValueError("objectives: name at least one objective, e.g. {clip: {weight: 1.0}}")
        if (self.dataset is None) == (not self.data.mixture):
            raise ValueError("name the data once: either dataset: NAME@VERSION or data.mixture: {NAME@VERSION: weight}")
        if self.model.unmasked_steps > self.steps:
            raise ValueError("model.unmasked_steps cannot exceed steps")
        family = self.model.family
        wrong = [n for n in self.objectives if family not in OBJECTIVES.get(n).families]
        if wrong:
            trains = {n: "/".join(sorted(OBJECTIVES.get(n).families)) for n in wrong}
            raise ValueError(
                f"model.family is {family}, but "
                + ", ".join(f"objective {n!r} trains a {f} model" for n, f in trains.items())
                + " (set model.family, or choose objectives of that family)"
            )
        return self

    def objective_options(self, name: str) -> Any:
        """The validated `Options` of objective `name`."""
        return OBJECTIVES.get(name).Options.model_validate(self.objectives[name].options)

    def sources(self) -> dict[str, float]:
        """The dataset versions trained on, with their sampling weights (one source: weight 1)."""
        return dict(self.data.mixture) if self.data.mixture else {str(self.dataset): 1.0}

    def objective_members(self) -> dict[str, tuple[str, ...]]:
        """The batch members each configured objective reads (member names or patterns)."""
        return {name: tuple(OBJECTIVES.get(name).members(self.objective_options(name))) for name in self.objectives}

    def resolved(self) -> TrainConfig:
        """Apply the smoke switch: tiny model, 20 steps, small batches."""
        if not self.smoke:
            return self
        return self.model_copy(
            update={
                "steps": min(self.steps, 20),
                "batch_size": min(self.batch_size, 8),
                "model": self.model.model_copy(
                    update={"preset": "tiny", "unmasked_steps": min(self.model.unmasked_steps, 5)}
                ),
                "checkpoint": self.checkpoint.model_copy(update={"every_steps": 10}),
                "run": self.run.model_copy(update={"log_every": 5}),
            }
        )


def _option_error(name: str, model: type, err: Any, nested: bool = True) -> InitErrorDetails:
    """An option's validation error, located at `NAME.options.KEY` (under `objectives`) or
    `NAME.KEY` (`nested=False`: under `eval.tasks`)."""
    loc = (name, "options", *err["loc"]) if nested else (name, *err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(model.model_fields) or "none"
        error = PydanticCustomError(
            "unknown_option", "unknown option (allowed options: {allowed})", {"allowed": allowed}
        )
    else:
        error = PydanticCustomError(err["type"], err["msg"].replace("{", "{{").replace("}", "}}"))
    return {"type": error, "loc": loc, "input": err.get("input")}
