"""SIMLA's single-stream model: a language model with cross-attention stacked on a ViT.

Khan et al. 2022, "Single-Stream Multi-Level Alignment for Vision-Language Pretraining".

Layout (§2.1, Fig. 1). The image goes through the vision encoder E_v, open_clip's
`VisionTransformer` built as in `training.model` (same preset "vision" keys); its tokens
{v_cls, v_1..v_N} after `ln_post` are the image tokens [B, N+1, Wv]. The caption enters a
BERT-style text transformer (bidirectional; padding keys masked with the semantics of
`tokenizer.padding_mask`: real up to and including EOT). Its top `cross_layers` blocks
add cross-attention to the image tokens (linearly projected to the text width) after their
self-attention. The CLIP tokenizer's start-of-text token, position 0, is the text [CLS].

- Unimodal text encoder E_l (ITC, Eq. 1-4): the text without the image. `encode_text`
  returns the L2-normalised [CLS] feature g_l(l_cls) and the residual-stream states.
- Multimodal encoder E_mm (ITM Eq. 5, MLM Eq. 6): `fuse` runs the cross-attention blocks
  over the text with the image; `cls` feeds `itm_head`, `states` feed `mlm_head`.
- Two ways to share the text blocks, preset key "text.shared":
  * false (default, ALBEF-style): blocks 0..layers-cross_layers-1 are self-attention only
    and are the text encoder; the cross-attention blocks are the fusion layers on top.
    `fuse` starts from `encode_text`'s states, so the shared bottom runs once per caption
    (ITC, ITM positives and hard negatives reuse it; MLM needs its own, masked, pass).
  * true (what SIMLA's code does, appendix 1.2 "reuses the multimodal encoder as a text
    encoder by sharing weights"; BLIP's med.py mode="text"): the text encoder runs every
    block with its cross-attention skipped, and `fuse` reruns every block from the token
    embeddings with cross-attention on. Nothing is reused; `fuse` needs token ids.
- Image-as-query fusion (XMM's masked image modelling, Eq. 6 p^MIM(Î, T); appendix 1.2,
  point 3): `fuse_image` runs the (masked) image tokens, projected to the text width, as
  queries through the same multimodal blocks, cross-attending to the unimodal text
  states; `mim_head` scores its patch outputs. SIMLA's code does this with the caption's
  raw word embeddings as keys; here the keys are the text encoder's output.
- PSL (Eq. 8-9, appendix 3): `fuse(..., return_attention=True)["cls_attention"]` is row 0
  of the last multimodal block's self-attention over the language sequence, averaged
  over heads ([B, L]): the input of `training.objectives.psl_targets`. `psl_head` scores
  the vocabulary from the unimodal image [CLS] (Wv wide, after `ln_post`, as the paper
  says; SIMLA's code puts it on the 256-d normalised ITC feature instead).

Heads: `itm_head` Linear(W, 2) (index 1: matched); `mlm_head` BERT's (dense + GELU + LayerNorm, then the token
embedding's transpose, tied, plus a bias); `mim_head` Linear(W, codebook_size) over the
patch outputs of `fuse_image` (text-conditioned; W, not Wv, wide), with the learned
`mim_mask_token` that replaces masked patches (a model parameter, so the momentum copy
has its own average of it); `psl_head`
Linear(Wv, vocab). ITC projections: open_clip's `visual.proj` (Wv -> E, no bias) and
`text_proj` Linear(W, E).

Blocks are pre-LN (the ViT's convention; BERT is post-LN), so each stream has its own
final LayerNorm: `ln_text` (unimodal output) and `ln_fusion` (multimodal output). The
states `encode_text` returns are the residual stream *before* `ln_text`, which is what
`fuse` continues from. Attention maps are computed only when asked (explicit softmax);
otherwise `F.scaled_dot_product_attention`. No dropout, no buffers: `copy.deepcopy` gives
a momentum model that `momentum_update` can follow (parameters matched by name; the tied
MLM decoder stays tied in the copy). Padding is exact: trimming the ids to the longest
caption's EOT leaves every real position's output unchanged, so callers may trim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training import model, tokenizer

PRESET_DIR = Path(__file__).parent / "presets" / "single_stream"


def load_preset(name: str) -> dict[str, Any]:
    """A preset by name (training/presets/single_stream/NAME.json) or by path to a JSON file."""
    return model.load_preset(name, PRESET_DIR, "single-stream preset")


class Attention(nn.Module):
    """Multi-head attention of queries `x` [B, L, W] over `context` [B, S, W]; `key_mask` [B, S] True = real key.

    Returns (output [B, L, W], weights [B, H, L, S] or None). With `need_weights` the
    softmax is explicit (in fp32) so the map can be returned; otherwise one
    `F.scaled_dot_product_attention` call, the same function of the inputs.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, w = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, w // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, w // h).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask.bool()[:, None, None, :]
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)).float() * (w // h) ** -0.5
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            y = weights.to(v.dtype) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, w)), weights


class Block(nn.Module):
    """Pre-LN block: self-attention, then (if `cross` and a context is given) cross-attention, then the MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cross: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_cross = nn.LayerNorm(width) if cross else None
        self.cross_attn = Attention(width, heads) if cross else None
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x, self-attention weights, cross-attention weights); weights None unless `need_weights`."""
        h = self.ln_1(x)
        a, self_weights = self.attn(h, h, mask, need_weights)
        x = x + a
        cross_weights = None
        if context is not None and self.cross_attn is not None:
            c, cross_weights = self.cross_attn(self.ln_cross(x), context, context_mask, need_weights)
            x = x + c
        return x + self.mlp(self.ln_2(x)), self_weights, cross_weights


class TextTransformer(nn.Module):
    """Token + position embeddings and `layers` blocks, the top `cross_layers` with cross-attention."""

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        width: int,
        layers: int,
        cross_layers: int,
        heads: int,
        mlp_ratio: float,
        vision_width: int,
        shared: bool = False,
    ) -> None:
        super().__init__()
        if not 1 <= cross_layers <= layers:
            raise ValueError(f"cross_layers must lie in [1, layers={layers}], got {cross_layers}")
        if not shared and cross_layers == layers:
            raise ValueError(
                "with shared=false the text encoder is the blocks below the cross-attention ones: "
                f"cross_layers must be < layers={layers} (or set shared=true)"
            )
        self.width, self.heads, self.shared = width, heads, shared
        self.unimodal_layers = layers if shared else layers - cross_layers
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, cross=i >= layers - cross_layers) for i in range(layers)
        )
        self.image_proj = nn.Linear(vision_width, width)  # image tokens -> text width (cross-attention context)
        self.ln_text = nn.LayerNorm(width)
        self.ln_fusion = nn.LayerNorm(width)

    @property
    def context_length(self) -> int:
        return self.positional_embedding.shape[0]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]

    def unimodal(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Residual stream [B, L, W] after the text-encoder blocks (cross-attention never runs)."""
        x = self.embed(ids)
        for block in self.blocks[: self.unimodal_layers]:
            x = block(x, mask)[0]
        return x

    def multimodal(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        context: torch.Tensor,
        context_mask: torch.Tensor | None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The multimodal blocks (shared: all; else the cross-attention ones) over `x` with `context`.

        Returns (residual stream, self-attention maps, cross-attention maps), one map per
        block that made one ([B, H, L, L] and [B, H, L, S]; empty lists unless `need_weights`).
        """
        self_maps, cross_maps = [], []
        for block in self.blocks if self.shared else self.blocks[self.unimodal_layers :]:
            x, self_w, cross_w = block(x, mask, context, context_mask, need_weights)
            self_maps += [] if self_w is None else [self_w]
            cross_maps += [] if cross_w is None else [cross_w]
        return x, self_maps, cross_maps


class MlmHead(nn.Module):
    """BERT's masked-language-modelling head; the decoder weight *is* the token embedding (tied)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        vocab_size, width = embedding.weight.shape
        self.dense = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.decoder = nn.Linear(width, vocab_size)
        self.decoder.weight = embedding.weight

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(states))))


def _init_bert(module: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class SingleStream(nn.Module):
    family = "single_stream"

    def __init__(
        self, preset: dict[str, Any], embed_dim: int | None = None, codebook_size: int = 8192, mask_ratio: float = 0.0
    ) -> None:
        super().__init__()
        v, t = preset["vision"], preset["text"]
        self.embed_dim = embed_dim or preset["embed_dim"]
        self.image_size = v["image_size"]
        self.codebook_size = codebook_size
        self.vocab_size = tokenizer.vocab_size()
        self.visual = model.vision_tower(v, self.embed_dim, mask_ratio)
        self.text = TextTransformer(
            vocab_size=self.vocab_size,
            context_length=t["context_length"],
            width=t["width"],
            layers=t["layers"],
            cross_layers=t["cross_layers"],
            heads=t["heads"],
            mlp_ratio=t.get("mlp_ratio", 4.0),
            vision_width=v["width"],
            shared=t.get("shared", False),
        )
        self.text_proj = nn.Linear(t["width"], self.embed_dim)
        self.itm_head = nn.Linear(t["width"], 2)
        self.mlm_head = MlmHead(self.text.token_embedding)
        self.mim_head = nn.Linear(t["width"], codebook_size)
        self.mim_mask_token = nn.Parameter(torch.zeros(v["width"]).normal_(std=0.02))  # BEiT's [MASK] patch
        self.psl_head = nn.Linear(v["width"], self.vocab_size)
        for part in (self.text, self.text_proj, self.itm_head, self.mlm_head, self.mim_head, self.psl_head):
            part.apply(_init_bert)
        nn.init.normal_(self.text.positional_embedding, std=0.01)

    # --- sizes -------------------------------------------------------------------------------

    @property
    def vision_width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def text_width(self) -> int:
        return self.text.width

    @property
    def patch_size(self) -> int:
        return self.visual.conv1.kernel_size[0]

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def context_length(self) -> int:
        return self.text.context_length

    def set_masking(self, enabled: bool) -> None:
        """FLIP patch dropout on or off (only ever active in training mode with mask_ratio > 0)."""
        self.visual.patch_dropout.enabled = enabled and self.visual.patch_dropout.ratio > 0

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Activation checkpointing of the ViT (the text blocks are not checkpointed)."""
        self.visual.set_grad_checkpointing(enabled)

    # --- vision ------------------------------------------------------------------------------

    def encode_image(self, image: torch.Tensor, tokens: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(image_feat [B, E] L2-normalised g_v(v_cls), image tokens [B, N+1, Wv] after ln_post, CLS first;
        None with `tokens=False`)."""
        out = model.vit_tokens(self.visual, image, drop=True)
        return F.normalize(out[:, 0] @ self.visual.proj, dim=-1), (out if tokens else None)

    def masked_image_pass(self, image: torch.Tensor, mask: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
        """Tokens [B, grid*grid + 1, Wv] (CLS first, unlike DualEncoder's patches-only) of `image` with the
        patches in `mask` [B, grid*grid] replaced by `mask_token` [Wv] before the position embeddings
        (BEiT; SIMLA §2.3). No patch dropout. Feed it to `fuse_image`, then `mim_head` on `[:, 1:]`."""
        return model.vit_tokens(self.visual, image, mask, mask_token)

    def psl_logits(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Concept logits p^PSL [B, vocab] from the unimodal image [CLS] (Eq. 8)."""
        return self.psl_head(image_tokens[:, 0])

    # --- text and fusion ---------------------------------------------------------------------

    def encode_text(
        self, text: torch.Tensor, text_mask: torch.Tensor | None = None, tokens: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(text_feat [B, E] L2-normalised g_l(l_cls), states [B, L, W]: the unimodal residual stream
        before `ln_text`, the input `fuse` continues from; None with `tokens=False`). `text_mask`
        defaults to the padding mask."""
        mask = tokenizer.padding_mask(text) if text_mask is None else text_mask.bool()
        states = self.text.unimodal(text, mask)
        return F.normalize(self.text_proj(self.text.ln_text(states[:, 0])), dim=-1), (states if tokens else None)

    def fusion_input(self, ids: torch.Tensor, states: torch.Tensor | None) -> torch.Tensor:
        """What `fuse` takes for a caption: its unimodal `states` when they can be reused (text.shared
        false), else its token ids."""
        return ids if self.text.shared or states is None else states

    def fuse(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image_tokens: torch.Tensor,
        image_mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> dict[str, Any]:
        """The multimodal encoder E_mm: language tokens as queries, image tokens as cross-attention keys.

        `text`: token ids [B, L] (long) or, when text.shared is false, `encode_text`'s states
        [B, L, W] (then the text-encoder blocks are not rerun). `image_tokens` [B, N+1, Wv];
        `image_mask` [B, N+1] True = real (None: all). Returns `states` [B, L, W] (after
        ln_fusion; MLM) and `cls` [B, W] (ITM). With `return_attention` also `cls_attention`
        [B, L] (last block's self-attention row 0, head-averaged; sums to 1 over real
        positions, 0 on padding), `cross_attention` [B, L, N+1] (last block, head-averaged),
        and per multimodal block, heads kept and on the graph (Grad-CAM, §3.5):
        `self_attentions` ([B, H, L, L], ...) and `cross_attentions` ([B, H, L, N+1], ...).
        """
        mask = text_mask.bool()
        if text.is_floating_point():
            if self.text.shared:
                raise ValueError("text.shared: the multimodal pass reruns every block; give fuse token ids")
            x = text
        else:
            x = self.text.embed(text) if self.text.shared else self.text.unimodal(text, mask)
        context = self.text.image_proj(image_tokens)
        x, self_maps, cross_maps = self.text.multimodal(x, mask, context, image_mask, return_attention)
        states = self.text.ln_fusion(x)
        out: dict[str, Any] = {"states": states, "cls": states[:, 0]}
        if return_attention:
            out.update(
                cls_attention=self_maps[-1][:, :, 0].mean(dim=1),
                cross_attention=cross_maps[-1].mean(dim=1),
                self_attentions=tuple(self_maps),
                cross_attentions=tuple(cross_maps),
            )
        return out

    def fuse_image(
        self,
        image_tokens: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image tokens as queries through the multimodal blocks, cross-attending to the caption (XMM MIM).

        `image_tokens` [B, N+1, Wv] (e.g. `masked_image_pass`); `text`: ids [B, L] or
        `encode_text`'s states [B, L, W] (either mode). Returns states [B, N+1, W] after
        ln_fusion; `mim_head(states[:, 1:])` gives the visual-token logits of the patches.
        """
        mask = text_mask.bool()
        states = text if text.is_floating_point() else self.text.unimodal(text, mask)
        context = self.text.ln_text(states)
        x = self.text.image_proj(image_tokens)
        return self.text.ln_fusion(self.text.multimodal(x, image_mask, context, mask)[0])

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unimodal passes, each once: what ITC needs and what `fuse` / `psl_logits` continue from."""
        image_features, image_tokens = self.encode_image(image)
        text_features, text_states = self.encode_text(text, text_mask)
        return {
            "image_features": image_features,
            "text_features": text_features,
            "image_tokens": image_tokens,
            "text_states": text_states,
            "text_mask": text_mask,
        }


def build_single_stream(
    preset: str,
    embed_dim: int | None = None,
    codebook_size: int = 8192,
    mask_ratio: float = 0.0,
    grad_checkpointing: bool = False,
) -> SingleStream:
    model = SingleStream(load_preset(preset), embed_dim=embed_dim, codebook_size=codebook_size, mask_ratio=mask_ratio)
    model.set_grad_checkpointing(grad_checkpointing)
    return model
