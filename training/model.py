"""The dual encoder: open_clip's VisionTransformer and TextTransformer with token outputs.

Pooled features and every token are projected into one joint space by the towers' own
linear projections and L2-normalised (CLIP: pooled; FILIP Sec. 3.1.1: tokens). FLIP
(Li et al. 2023): during training a share `mask_ratio` of image patches is dropped at
random per sample before the transformer; `set_masking(False)` turns it off for the
unmasked tuning phase and for evaluation. Size presets are JSON files found by name.

Passes beyond CLIP's, for the self-supervised objectives:
- `text_pass(text, causal=False)`: the text tower without the causal mask, padding keys
  masked (BERT-style bidirectional context for masked language modelling: DeCLIP §3.3
  "Self-Supervision within each modality"; DeCLIP's public code runs MLM through the
  causal tower, so a masked token sees only its left context).
- `masked_image_pass(image, mask, mask_token)`: BEiT-style masked image modelling input
  (FLAVA A.1 MIM): the embeddings of masked patches are replaced by a learned mask token
  before the position embeddings are added; no patch dropout.
- A text pass over captions shorter than the context may run only up to the longest
  caption's end-of-text token (`trim`): causal positions never see later ones and
  bidirectional ones never see padding, so the pooled feature and every real token are
  unchanged, at a fraction of the cost.
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


def load_preset(name: str, directory: Path = PRESET_DIR, what: str = "model.preset") -> dict[str, Any]:
    """A preset by name (`directory`/NAME.json, default training/presets) or by path to a JSON file."""
    path = Path(name) if name.endswith(".json") else directory / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.json")))
        raise ValueError(f"{what} {name!r}: no such preset (known: {known}; or a path to a .json)")
    return json.loads(path.read_text())


def vision_tower(v: dict[str, Any], embed_dim: int, mask_ratio: float = 0.0) -> VisionTransformer:
    """open_clip's ViT from a preset's "vision" block, with token outputs and FLIP masking."""
    visual = VisionTransformer(
        image_size=v["image_size"],
        patch_size=v["patch_size"],
        width=v["width"],
        layers=v["layers"],
        heads=v["heads"],
        mlp_ratio=v.get("mlp_ratio", 4.0),
        output_dim=embed_dim,
        output_tokens=True,
    )
    visual.patch_dropout = PatchMask(mask_ratio)
    return visual


def vit_tokens(
    visual: VisionTransformer,
    image: torch.Tensor,
    mask: torch.Tensor | None = None,
    mask_token: torch.Tensor | None = None,
    drop: bool = False,
) -> torch.Tensor:
    """Every token [B, N+1, W] after ln_post (CLS first) of `image`. `mask` [B, N]: those patches'
    embeddings are replaced by `mask_token` [W] before the position embeddings (BEiT; FLAVA A.1
    MIM). `drop`: FLIP patch dropout (training mode only), so fewer than N patches come back."""
    x = visual.conv1(image)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    if mask is not None:
        x = torch.where(mask[..., None], mask_token.to(x.dtype).expand_as(x), x)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    if drop:
        x = visual.patch_dropout(x)
    return visual.ln_post(visual.transformer(visual.ln_pre(x)))


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
    family = "dual_encoder"

    def __init__(self, preset: dict[str, Any], embed_dim: int | None = None, mask_ratio: float = 0.0) -> None:
        super().__init__()
        v, t = preset["vision"], preset["text"]
        self.embed_dim = embed_dim or preset["embed_dim"]
        self.image_size = v["image_size"]
        self.visual = vision_tower(v, self.embed_dim, mask_ratio)
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

    @property
    def vision_width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def text_width(self) -> int:
        return self.text.width

    @property
    def patch_size(self) -> int:
        return self.visual.conv1.kernel_size[0]

    def encode_image(self, image: torch.Tensor, tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, toks = self.visual(image)
        feats = F.normalize(pooled, dim=-1)
        return feats, (F.normalize(toks @ self.visual.proj, dim=-1) if tokens else None)

    def encode_text(self, text: torch.Tensor, tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, toks = self.text_pass(text, causal=True, trim=not tokens)
        feats = F.normalize(pooled, dim=-1)
        return feats, (F.normalize(toks @ self.text.text_projection, dim=-1) if tokens else None)

    def text_pass(
        self, text: torch.Tensor, causal: bool = True, trim: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled output in the joint space [B, E] unnormalised, final-LN token states [B, L, W]).

        `causal=False`: full attention among real tokens (padding keys masked). `trim`: run up
        to the longest caption's end-of-text token (tokens come back trimmed); exact for every
        real token (causal: nothing looks ahead; bidirectional: padding keys are masked).
        """
        t = self.text
        eot = (text == t.eos_id).int().argmax(dim=-1)
        if trim:
            text = text[:, : int(eot.max()) + 1]
        seq = text.shape[1]
        x = t.token_embedding(text) + t.positional_embedding[:seq]
        if causal:
            attn = t.attn_mask[:seq, :seq].to(x.dtype)
        else:
            real = torch.arange(seq, device=text.device)[None] <= eot[:, None]
            attn = torch.zeros(text.shape[0], 1, seq, seq, dtype=x.dtype, device=x.device)
            attn = attn.masked_fill(~real[:, None, None, :], float("-inf"))
            attn = attn.expand(-1, t.heads, -1, -1).reshape(-1, seq, seq)
        x = t.ln_final(t.transformer(x, attn_mask=attn))
        pooled = x[torch.arange(x.shape[0], device=x.device), eot] @ t.text_projection
        return pooled, x

    def image_pass(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled output in the joint space [B, E] unnormalised, token states [B, N, W])."""
        return self.visual(image)

    def masked_image_pass(self, image: torch.Tensor, mask: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
        """Patch token states [B, grid*grid, W] of `image` with the patches in `mask` [B, grid*grid]
        replaced by `mask_token` [W] before the position embeddings (BEiT; FLAVA A.1 MIM)."""
        return vit_tokens(self.visual, image, mask, mask_token)[:, 1:]

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
    preset: str,
    embed_dim: int | None = None,
    mask_ratio: float = 0.0,
    grad_checkpointing: bool = False,
    family: str = "dual_encoder",
    codebook_size: int | None = None,
) -> nn.Module:
    """The model of `family` from its preset: a `DualEncoder`, or SIMLA's `SingleStream`
    (training.single_stream; its MIM head scores `codebook_size` visual tokens, default 8,192)."""
    if family == "single_stream":
        from training.single_stream import build_single_stream  # it builds on this module

        return build_single_stream(preset, embed_dim, codebook_size or 8192, mask_ratio, grad_checkpointing)
    if family != "dual_encoder":
        raise ValueError(f"model.family {family!r}: unknown (dual_encoder or single_stream)")
    model = DualEncoder(load_preset(preset), embed_dim=embed_dim, mask_ratio=mask_ratio)
    model.set_grad_checkpointing(grad_checkpointing)
    return model
