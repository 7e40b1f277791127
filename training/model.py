"""The dual encoder: open_clip's VisionTransformer and TextTransformer with token outputs.

Pooled features and every token are projected into one joint space by the towers' own
linear projections and L2-normalised (CLIP: pooled; FILIP Sec. 3.1.1: tokens). FLIP
(Li et al. 2023): during training a share `mask_ratio` of image patches is dropped at
random per sample before the transformer; `set_masking(False)` turns it off for the
unmasked tuning phase and for evaluation. Size presets are JSON files found by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.transformer import TextTransformer, VisionTransformer
from torch import nn

from training import tokenizer

PRESET_DIR = Path(__file__).parent / "presets"
OUTPUTS = frozenset({"image_features", "text_features", "image_tokens", "text_tokens"})


def load_preset(name: str) -> dict[str, Any]:
    """A preset by name (training/presets/NAME.json) or by path to a JSON file."""
    path = Path(name) if name.endswith(".json") else PRESET_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.json")))
        raise ValueError(f"model.preset {name!r}: no such preset (known: {known}; or a path to a .json)")
    return json.loads(path.read_text())


class PatchMask(nn.Module):
    """FLIP masking: keep a random int(n * (1 - ratio)) patches per sample; the class token stays."""

    def __init__(self, ratio: float) -> None:
        super().__init__()
        self.ratio = ratio
        self.enabled = ratio > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.enabled):
            return x
        cls, patches = x[:, :1], x[:, 1:]
        b, n, d = patches.shape
        keep = max(1, int(n * (1 - self.ratio)))
        idx = torch.rand(b, n, device=x.device).argsort(dim=1)[:, :keep]
        kept = torch.gather(patches, 1, idx[..., None].expand(-1, -1, d))
        return torch.cat([cls, kept], dim=1)


class DualEncoder(nn.Module):
    def __init__(self, preset: dict[str, Any], embed_dim: int | None = None, mask_ratio: float = 0.0) -> None:
        super().__init__()
        v, t = preset["vision"], preset["text"]
        self.embed_dim = embed_dim or preset["embed_dim"]
        self.image_size = v["image_size"]
        self.visual = VisionTransformer(
            image_size=v["image_size"],
            patch_size=v["patch_size"],
            width=v["width"],
            layers=v["layers"],
            heads=v["heads"],
            mlp_ratio=v.get("mlp_ratio", 4.0),
            output_dim=self.embed_dim,
            output_tokens=True,
        )
        self.visual.patch_dropout = PatchMask(mask_ratio)
        self.text = TextTransformer(
            context_length=t["context_length"],
            vocab_size=tokenizer.vocab_size(),
            width=t["width"],
            heads=t["heads"],
            layers=t["layers"],
            mlp_ratio=t.get("mlp_ratio", 4.0),
            output_dim=self.embed_dim,
            pool_type="eos",
            eos_id=tokenizer.eot_id(),
            output_tokens=True,
        )

    def set_masking(self, enabled: bool) -> None:
        self.visual.patch_dropout.enabled = enabled and self.visual.patch_dropout.ratio > 0

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.visual.set_grad_checkpointing(enabled)
        self.text.set_grad_checkpointing(enabled)

    def encode_image(self, image: torch.Tensor, tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, toks = self.visual(image)
        feats = F.normalize(pooled, dim=-1)
        return feats, (F.normalize(toks @ self.visual.proj, dim=-1) if tokens else None)

    def encode_text(self, text: torch.Tensor, tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, toks = self.text(text)
        feats = F.normalize(pooled, dim=-1)
        return feats, (F.normalize(toks @ self.text.text_projection, dim=-1) if tokens else None)

    def forward(
        self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, needs: frozenset[str] = OUTPUTS
    ) -> dict[str, torch.Tensor]:
        want_tokens = bool(needs & {"image_tokens", "text_tokens"})
        image_features, image_tokens = self.encode_image(image, tokens=want_tokens)
        text_features, text_tokens = self.encode_text(text, tokens=want_tokens)
        out = {"image_features": image_features, "text_features": text_features, "text_mask": text_mask}
        if want_tokens:
            out.update(image_tokens=image_tokens, text_tokens=text_tokens)
        return out


def build_model(
    preset: str, embed_dim: int | None = None, mask_ratio: float = 0.0, grad_checkpointing: bool = False
) -> DualEncoder:
    model = DualEncoder(load_preset(preset), embed_dim=embed_dim, mask_ratio=mask_ratio)
    model.set_grad_checkpointing(grad_checkpointing)
    return model
