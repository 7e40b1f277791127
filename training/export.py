"""`python -m training export RUN_OR_CHECKPOINT --format open_clip OUT [--storage DIR]`.

Writes the CLIP-compatible part of a trained dual encoder (both towers with their
projections, and a logit scale) as an open_clip model, so any open_clip code (zero-shot
evaluation, retrieval, fine-tuning) can use it without lipforge:

- `OUT/open_clip_config.json`: `{"model_cfg": ..., "preprocess_cfg": ...}`, the file
  open_clip's `local-dir:` (and `hf-hub:`) loading reads. `model_cfg` has the layout of
  open_clip's `model_configs/*.json` (`embed_dim`, `vision_cfg`, `text_cfg`), from the
  run's preset; `preprocess_cfg` is lipforge's image preparation (shorter side to the
  image size, bicubic, centre crop, CLIP's mean and std).
- `OUT/open_clip_model.safetensors`: the state dict of open_clip's `CLIP` class (its text
  tower's parameters sit at the top level: `token_embedding.weight`, `transformer.*`,
  ...), under the weights name `local-dir:` looks for first (a `.pt` file is not found
  there, and open_clip would then build the model with random weights, only logging it).

Three things make the open_clip model compute what lipforge's does:
- The vocabulary is 49,410: CLIP's 49,408 BPE tokens plus `<person>` and `<mask>`
  (`training.tokenizer`). `text_cfg.tokenizer_kwargs` names the two specials, so
  `open_clip.get_tokenizer("local-dir:OUT")` gives the same ids.
- Text pooling takes the first end-of-text token (`pool_type: eos`, `eos_id: 49407`), as
  `DualEncoder.text_pass` does: CLIP's default `argmax` would pick a special token, whose
  ids sit above end-of-text.
- FLIP patch dropout is off (`patch_dropout: 0`); the heads become open_clip's
  `head_width` (width / heads); the GELU is exact (`quick_gelu: false`).

The logit scale is the trained temperature of the run's global contrastive objective
(`clip`, else `flava_contrastive`, else `filip`: its `log_scale`, clamped as the objective
clamps it), else CLIP's initial ln(1/0.07). Nothing objective-specific (MLM heads, SimSiam
projectors and predictors, feature queues, codebook heads, mask tokens) is exported: those
serve the training losses only; the summary names what was left behind.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import torch

from catalog import storage
from catalog.errors import UserError
from training import tokenizer
from training.checkpoints import CheckpointError, RunCheckpoint, load_state, model_from_state, resolve_checkpoint
from training.config import TrainConfig
from training.data import MEAN, STD
from training.model import DualEncoder, load_preset
from training.objectives import OBJECTIVES, ModelInfo

FORMATS = ("open_clip",)
CONFIG_FILE = "open_clip_config.json"  # open_clip.constants.HF_CONFIG_NAME
WEIGHTS_FILE = "open_clip_model.safetensors"  # open_clip.constants.HF_SAFE_WEIGHTS_NAME
CLIP_INIT_LOG_SCALE = math.log(1 / 0.07)
# objectives whose temperature scales the global image-text similarity, the first present wins
SCALE_OBJECTIVES = ("clip", "flava_contrastive", "filip")


class ExportError(UserError, ValueError):
    """The export cannot be written as asked (output location, format)."""


# ---------------------------------------------------------------- conversion


def open_clip_model_cfg(preset: dict[str, Any], embed_dim: int | None = None) -> dict[str, Any]:
    """The open_clip model config (`model_configs/*.json` layout) of a lipforge preset."""
    v, t = preset["vision"], preset["text"]
    if v["width"] % v["heads"]:
        raise ExportError(f"preset: vision width {v['width']} is not a multiple of its {v['heads']} heads")
    tok = tokenizer.tokenizer(t["context_length"])
    return {
        "embed_dim": embed_dim or preset["embed_dim"],
        "quick_gelu": False,
        "vision_cfg": {
            "image_size": v["image_size"],
            "layers": v["layers"],
            "width": v["width"],
            "head_width": v["width"] // v["heads"],
            "mlp_ratio": v.get("mlp_ratio", 4.0),
            "patch_size": v["patch_size"],
            "patch_dropout": 0.0,
        },
        "text_cfg": {
            "context_length": t["context_length"],
            "vocab_size": tok.vocab_size,
            "width": t["width"],
            "heads": t["heads"],
            "layers": t["layers"],
            "mlp_ratio": t.get("mlp_ratio", 4.0),
            "pool_type": "eos",
            "eos_id": tok.eot_token_id,
            "tokenizer_kwargs": {"additional_special_tokens": list(tokenizer.SPECIAL_TOKENS)},
        },
    }


def open_clip_preprocess_cfg(preset: dict[str, Any]) -> dict[str, Any]:
    """lipforge's image preparation (`training.data.load_image`) in open_clip's `PreprocessCfg` terms."""
    return {
        "size": preset["vision"]["image_size"],
        "mode": "RGB",
        "mean": [round(float(x), 8) for x in MEAN],  # float32 constants, printed as such
        "std": [round(float(x), 8) for x in STD],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }


def open_clip_state_dict(model: DualEncoder, log_scale: float = CLIP_INIT_LOG_SCALE) -> dict[str, torch.Tensor]:
    """The dual encoder's weights as open_clip `CLIP`'s state dict (+ `logit_scale` = ln of the scale)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key.startswith("visual."):
            out[key] = value
        elif key.startswith("text."):
            out[key[len("text.") :]] = value
        else:  # DualEncoder holds only the two towers; anything new must be mapped here
            raise RuntimeError(f"model weight {key!r} has no open_clip counterpart")
    out["logit_scale"] = torch.tensor(float(log_scale))
    return {k: v.detach().cpu().float().contiguous().clone() for k, v in out.items()}


def trained_log_scale(config: TrainConfig, objectives_state: dict[str, torch.Tensor]) -> tuple[float, str | None]:
    """(ln of the logit scale, the objective it came from): the first of `SCALE_OBJECTIVES`
    trained, clamped as that objective clamps it; else (CLIP's initial ln(1/0.07), None)."""
    for name in SCALE_OBJECTIVES:
        key = f"{name}.log_scale"
        if name in config.objectives and key in objectives_state:
            objective = OBJECTIVES.get(name)(config.objective_options(name), ModelInfo())
            with torch.no_grad():
                objective.log_scale.copy_(objectives_state[key].float())
                return math.log(float(objective.logit_scale())), name
    return CLIP_INIT_LOG_SCALE, None


def write_open_clip(
    model: DualEncoder,
    preset: dict[str, Any],
    out: str | os.PathLike,
    log_scale: float = CLIP_INIT_LOG_SCALE,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `OUT/open_clip_config.json` and `OUT/open_clip_model.safetensors` for `model`
    (built from `preset`); returns their paths, the open_clip model config and the parameter count."""
    from safetensors.torch import save_file

    out_dir = _output_dir(out)
    model_cfg = open_clip_model_cfg(preset, model.embed_dim)
    config = {"model_cfg": model_cfg, "preprocess_cfg": open_clip_preprocess_cfg(preset)}
    if provenance:
        config["lipforge"] = provenance  # open_clip reads only model_cfg and preprocess_cfg
    weights = open_clip_state_dict(model, log_scale)
    paths = {"config": str(out_dir / CONFIG_FILE), "weights": str(out_dir / WEIGHTS_FILE)}
    tmp = out_dir / f".{WEIGHTS_FILE}.tmp"
    save_file(weights, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, paths["weights"])
    storage.write_json(paths["config"], config)
    return {
        **paths,
        "out": str(out_dir),
        "model_cfg": model_cfg,
        "parameters": sum(w.numel() for w in weights.values()),
    }


def export_checkpoint(ckpt: RunCheckpoint, out: str | os.PathLike) -> dict[str, Any]:
    """Export a training checkpoint to open_clip; returns what was written and what was left out."""
    if ckpt.config.model.family != "dual_encoder":
        raise CheckpointError(
            f"checkpoint {ckpt.path}: export writes a dual encoder as open_clip's CLIP, but run {ckpt.run!r} "
            f"trained a {ckpt.config.model.family} model (open_clip has no single-stream architecture); "
            "evaluate it with `python -m training eval` instead"
        )
    state = load_state(ckpt)
    model = model_from_state(ckpt, state)
    objectives_state = state.get("objectives", {})
    log_scale, scale_from = trained_log_scale(ckpt.config, objectives_state)
    exported = {f"{scale_from}.log_scale"} if scale_from else set()
    left_out = _left_out({k: v for k, v in objectives_state.items() if k not in exported})
    if scale_from:
        origin = f"objective {scale_from!r} (temperature {math.exp(-log_scale):.4g})"
    else:
        origin = "CLIP's initial temperature 0.07 (the run trained no clip/flava_contrastive/filip temperature)"
    provenance = {
        "run": ckpt.run,
        "step": ckpt.step,
        "checkpoint": ckpt.path,
        "preset": ckpt.config.model.preset,
        "logit_scale_from": origin,
        "not_exported": left_out,
    }
    written = write_open_clip(model, load_preset(ckpt.config.model.preset), out, log_scale, provenance)
    return {**written, **provenance, "logit_scale": math.exp(log_scale)}


def _left_out(objectives_state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Per objective, how many values of its state stay behind."""
    counts: dict[str, int] = {}
    for key, value in objectives_state.items():
        name = key.split(".", 1)[0]
        counts[name] = counts.get(name, 0) + value.numel()
    return counts


def _output_dir(out: str | os.PathLike) -> Path:
    """OUT as a local directory that is new, empty or an earlier export (its two files are replaced)."""
    if storage.is_remote(str(out)):
        raise ExportError(f"export OUT {out}: write to a local directory (open_clip loads `local-dir:` paths)")
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ExportError(f"export OUT {out}: exists and is not a directory")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE))
        if others:
            raise ExportError(
                f"export OUT {out}: not empty ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); "
                "choose a new directory (open_clip would load any other weights file there)"
            )
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a trained dual encoder (both towers) as an open_clip model")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", help="a checkpoint dir, a run dir or a run name")
    p.add_argument("out", metavar="OUT", help="the output directory (new or empty)")
    p.add_argument("--format", choices=FORMATS, default="open_clip", help="the model format (default open_clip)")
    p.add_argument(
        "--storage",
        default=None,
        metavar="DIR",
        help="where run names are looked up (a checkpoint.storage; default ./runs/checkpoints, then ./runs)",
    )


def main(args: argparse.Namespace) -> int:
    ckpt = resolve_checkpoint(args.checkpoint, storage=args.storage)
    summary = export_checkpoint(ckpt, args.out)
    print("\n".join(summary_lines(summary)))
    return 0


def summary_lines(summary: dict[str, Any]) -> list[str]:
    cfg, out = summary["model_cfg"], summary["out"]
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    left = summary["not_exported"]
    lines = [
        f"exported run {summary['run']!r} step {summary['step']} ({summary['checkpoint']}) as open_clip to {out}",
        f"  {CONFIG_FILE}: ViT {v['layers']}x{v['width']} patch {v['patch_size']} at {v['image_size']}px, "
        f"text {t['layers']}x{t['width']} context {t['context_length']} vocab {t['vocab_size']} "
        f"(EOT pooling, id {t['eos_id']}), embed_dim {cfg['embed_dim']}",
        f"  {WEIGHTS_FILE}: {summary['parameters']:,} parameters",
        f"  logit scale {summary['logit_scale']:.4g} from {summary['logit_scale_from']}",
    ]
    if left:
        what = ", ".join(f"{name} ({n:,} values)" for name, n in left.items())
        lines.append(f"  not exported (objective state used only by the training losses): {what}")
    else:
        lines.append("  not exported: nothing (no objective state in the checkpoint)")
    lines += [
        "load it with:",
        "  import open_clip",
        f'  model, _, preprocess = open_clip.create_model_and_transforms("local-dir:{out}")',
        f'  tokenizer = open_clip.get_tokenizer("local-dir:{out}")  # CLIP BPE + <person>, <mask>',
    ]
    return lines
