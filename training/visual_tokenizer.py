"""A pluggable visual tokenizer: one discrete token id per ViT patch, the targets of masked
image modelling (BEiT-style MIM in FLAVA and SIMLA, which predict DALL-E dVAE ids from an
8,192-code vocabulary; those weights are not installable here, so lipforge learns its own
codebook over a dataset version, or loads a user's encoder).

Contract (`VisualTokenizer.forward(images, grid)`): `images` is exactly the tensor the ViT
sees, [B, 3, H, W], CLIP-normalised (`training.data.load_image`); the result is a
LongTensor [B, grid*grid] of ids in [0, codes), row-major over the patch grid (id k is
patch (k // grid, k % grid), the ViT's patch order). Ids are computed from that tensor
alone, so the targets of a crop are the crop's own patches (SIMLA's public code tokenises a
differently augmented crop, which misaligns targets and patches: here they cannot be). The
tokenizer is frozen: it has no parameters, only buffers (so the trainer's state_dict holds
it), and runs under no_grad with autocast off, on whatever device its buffers are on.

Patch vectors: the H×W image is cut into grid×grid cells (the ViT's patches), each cell is
area-resized (adaptive average pooling) to p×p pixels (`patch_pixels`, default 8) and
flattened to 3·p·p values of CLIP-normalised pixels. Codebooks:

- k-means (`learn_kmeans`): Lloyd iterations in torch on the patch vectors, nearest
  centroid by L2 through one matmul per chunk; random (seeded) or k-means++ init; an empty
  cluster is re-seeded with the patch farthest from its centroid. Tokenising is the same
  nearest-centroid search, and the centroid is the decoded patch. Per-patch mean/std
  normalisation (`normalize=True`, MAE-style) is an option, off by default: measured on
  real photos (docs/benchmarks.md) it reconstructs worse from the token alone, because the
  id then carries no brightness or colour (decoding uses each code's mean patch mean/std).
- VQ-VAE (`learn_vqvae`): a small conv encoder (log2(p) stride-2 convs: one latent per
  cell) -> vector quantiser with `codes` entries (EMA codebook updates, dead codes
  restarted from current latents) -> a conv decoder back to p×p per cell. The encoder,
  codebook and decoder are stored as buffers of the tokenizer.
- A user's encoder (`load_visual_tokenizer(root, "path/encoder.ts")`): a TorchScript
  module mapping images [B, 3, S, S] to logits [B, codes, h, w] (argmax is the id) or ids
  [B, h, w]; h = w = grid is required (`GridMismatch` otherwise). Options: `input_size`
  resizes the input (bilinear, antialiased) to S×S first (a DALL-E encoder takes 256 or
  more for a 32×32 grid, so the size the ViT sees usually needs it); `input_range="unit"`
  maps CLIP-normalised pixels back to [0, 1] first; `codes` (default: the module's
  `codes`/`vocab_size`/`num_tokens` attribute, else 8,192). Any further pixel mapping the
  encoder expects (e.g. DALL-E's `map_pixels`) belongs inside the scripted module.

`reconstruction_error(tokenizer, images, grid)` is the MSE between the patch vectors and
their decoded reconstruction. Saved tokenizers are `.pt` files (`save`, format
`lipforge.visual-tokenizer/1`); `python -m training tokenizer build NAME@VERSION` stores
one as the version's artifact `visual-tokenizer` (catalog.artifacts).
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from catalog import artifacts
from catalog.errors import UserError
from catalog.shards import sha256_of
from catalog.versions import resolve
from training.data import MEAN, STD

CODES = 8192  # DALL-E dVAE vocabulary (FLAVA supplement, SIMLA Sec. 3)
PATCH_PIXELS = 8
FORMAT = "lipforge.visual-tokenizer/1"
ARTIFACT = "visual-tokenizer"  # the artifact name `tokenizer build` records
ARTIFACT_KIND = "visual-tokenizer"
BUILD_HINT = "python -m training tokenizer build"
_CHUNK_ELEMENTS = 1 << 25  # distance-matrix elements per chunk (128 MiB in fp32)

Checkpoint = Callable[[float, "VisualTokenizer"], None]
Progress = Callable[[dict[str, Any]], None]


class TokenizerError(UserError, ValueError):
    """A visual tokenizer cannot be loaded, built or used; the message names the path or ref."""


class GridMismatch(TokenizerError):
    """The tokenizer's token grid differs from the ViT's patch grid."""


class MissingTokenizer(TokenizerError, LookupError):
    """No tokenizer file at a path, or no tokenizer artifact recorded for a dataset version."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ------------------------------------------------------------------ patches


def _check_images(images: torch.Tensor, grid: int) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"visual tokenizer: expected images [B, 3, H, W], got {list(images.shape)}")
    h, w = images.shape[-2:]
    if grid < 1 or h % grid or w % grid:
        raise GridMismatch(f"visual tokenizer: a {h}x{w} image does not split into a {grid}x{grid} patch grid")


def patch_cells(images: torch.Tensor, grid: int, patch_pixels: int = PATCH_PIXELS) -> torch.Tensor:
    """[B, 3, H, W] -> [B, grid*grid, 3, p, p]: each ViT patch cell (row-major) area-resized to p×p."""
    _check_images(images, grid)
    b, _, h, w = images.shape
    ch, cw = h // grid, w // grid
    x = images.float().reshape(b, 3, grid, ch, grid, cw).permute(0, 2, 4, 1, 3, 5).reshape(b * grid * grid, 3, ch, cw)
    if (ch, cw) != (patch_pixels, patch_pixels):
        x = F.adaptive_avg_pool2d(x, patch_pixels)
    return x.reshape(b, grid * grid, 3, patch_pixels, patch_pixels)


def patch_vectors(images: torch.Tensor, grid: int, patch_pixels: int = PATCH_PIXELS) -> torch.Tensor:
    """[B, 3, H, W] -> [B, grid*grid, 3*p*p]: the patch vectors codebooks are learned on."""
    return patch_cells(images, grid, patch_pixels).flatten(2)


def _cells_to_image(cells: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, grid*grid, 3, p, p] -> [B, 3, grid*p, grid*p]."""
    b, _, c, p, _ = cells.shape
    return cells.reshape(b, grid, grid, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, grid * p, grid * p)


def _image_to_cells(image: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, 3, grid*p, grid*p] -> [B, grid*grid, 3, p, p]."""
    b, c, s, _ = image.shape
    p = s // grid
    return image.reshape(b, c, grid, p, grid, p).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, c, p, p)


def nearest(x: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest codebook row of each row of `x` by L2 (one matmul per chunk): (ids [N], squared distances [N])."""
    c2 = (codebook * codebook).sum(1)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, codebook.shape[0]))
    ids = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk]
        value, index = torch.addmm(c2, part, codebook.T, alpha=-2.0).min(1)
        ids[start : start + chunk] = index
        dist[start : start + chunk] = (value + (part * part).sum(1)).clamp_min(0)
    return ids, dist


def _normalise_patches(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = x.mean(1, keepdim=True)
    std = x.std(1, keepdim=True) + 1e-3
    return (x - mean) / std, mean.squeeze(1), std.squeeze(1)


def _to_buffers(module: nn.Module) -> nn.Module:
    """Turn every parameter of `module` into a buffer of the same name (frozen, still in state_dict)."""
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            delattr(sub, name)
            sub.register_buffer(name, param.detach().clone())
    return module


# ------------------------------------------------------------------ tokenizers


class VisualTokenizer(nn.Module):
    """Base class: frozen, buffers only; `forward(images, grid)` -> ids [B, grid*grid] (module docstring)."""

    kind = "base"

    def __init__(self, codes: int, reference: str = "") -> None:
        super().__init__()
        self.codes = int(codes)
        self.reference = reference or f"in memory ({self.kind})"
        self.meta: dict[str, Any] = {}  # what the file was saved with (`save(path, meta)`)

    def train(self, mode: bool = True) -> VisualTokenizer:  # frozen: always in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        _check_images(images, grid)
        with torch.autocast(images.device.type, enabled=False):
            ids = self.encode(images.float(), grid)
        return ids.reshape(images.shape[0], grid * grid).long()

    def encode(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, ids: torch.Tensor, grid: int) -> torch.Tensor:
        """Ids [B, grid*grid] -> reconstructed patch vectors [B, grid*grid, 3*p*p]."""
        raise TokenizerError(f"visual tokenizer {self.reference}: a {self.kind} tokenizer has no decoder")

    def check(self, image_size: int, grid: int) -> None:
        """Fail before training (GridMismatch) when this tokenizer cannot tokenise the ViT's input."""
        device = next(iter(self.buffers()), torch.zeros(0)).device
        ids = self(torch.zeros(1, 3, image_size, image_size, device=device), grid)
        if ids.shape != (1, grid * grid):
            raise GridMismatch(f"visual tokenizer {self.reference}: gives {ids.shape[1]} ids, expected {grid * grid}")

    def config(self) -> dict[str, Any]:
        return {"codes": self.codes}

    def save(self, path: str, meta: dict[str, Any] | None = None) -> str:
        """Write a `.pt` file `load_visual_tokenizer` reads; returns its sha256."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        blob = {"format": FORMAT, "kind": self.kind, "config": self.config(), "state_dict": state, "meta": meta or {}}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        torch.save(blob, tmp)
        os.replace(tmp, path)
        return sha256_of(path)[0]


class KMeansTokenizer(VisualTokenizer):
    """Nearest centroid of the (optionally per-patch normalised) patch vector; the centroid decodes."""

    kind = "kmeans"

    def __init__(
        self,
        codebook: torch.Tensor,
        patch_pixels: int = PATCH_PIXELS,
        normalize: bool = False,
        code_mean: torch.Tensor | None = None,
        code_std: torch.Tensor | None = None,
        reference: str = "",
    ) -> None:
        super().__init__(codebook.shape[0], reference)
        if codebook.shape[1] != 3 * patch_pixels * patch_pixels:
            raise ValueError(f"codebook rows have {codebook.shape[1]} values, expected 3*{patch_pixels}^2")
        self.patch_pixels, self.normalize = int(patch_pixels), bool(normalize)
        k = codebook.shape[0]
        self.register_buffer("codebook", codebook.detach().float().clone())
        self.register_buffer("code_mean", torch.zeros(k) if code_mean is None else code_mean.detach().float().clone())
        self.register_buffer("code_std", torch.ones(k) if code_std is None else code_std.detach().float().clone())

    def encode(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        x = patch_vectors(images, grid, self.patch_pixels).reshape(-1, self.codebook.shape[1])
        if self.normalize:
            x = _normalise_patches(x)[0]
        return nearest(x, self.codebook.float())[0]  # fp32 even if the module was cast

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, grid: int) -> torch.Tensor:
        rec = self.codebook[ids].float() * self.code_std[ids, None].float() + self.code_mean[ids, None].float()
        return rec.reshape(ids.shape[0], grid * grid, -1)

    def config(self) -> dict[str, Any]:
        return {"codes": self.codes, "patch_pixels": self.patch_pixels, "normalize": self.normalize}

    @classmethod
    def empty(cls, config: dict[str, Any]) -> KMeansTokenizer:
        p = int(config["patch_pixels"])
        return cls(torch.zeros(int(config["codes"]), 3 * p * p), p, bool(config.get("normalize", False)))


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _vqvae_nets(patch_pixels: int, hidden: int, dim: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder [B,3,G*p,G*p] -> [B,dim,G,G] (log2 p stride-2 convs) and the mirrored decoder."""
    halvings = int(round(math.log2(patch_pixels)))
    if patch_pixels < 2 or 2**halvings != patch_pixels:
        raise TokenizerError(f"vqvae: --patch-pixels {patch_pixels} must be a power of two (2, 4, 8, 16)")
    enc: list[nn.Module] = []
    channels = 3
    for _ in range(halvings):
        enc += [nn.Conv2d(channels, hidden, 4, 2, 1), nn.ReLU()]
        channels = hidden
    enc += [_ResBlock(hidden), nn.ReLU(), nn.Conv2d(hidden, dim, 1)]
    dec: list[nn.Module] = [nn.Conv2d(dim, hidden, 3, 1, 1), _ResBlock(hidden)]
    for i in range(halvings):
        dec += [nn.ReLU(), nn.ConvTranspose2d(hidden, 3 if i == halvings - 1 else hidden, 4, 2, 1)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


class VQVAETokenizer(VisualTokenizer):
    """Conv encoder -> nearest codebook entry per cell; the decoder reconstructs the p×p cells."""

    kind = "vqvae"

    def __init__(
        self,
        encoder: nn.Sequential,
        decoder: nn.Sequential,
        codebook: torch.Tensor,
        patch_pixels: int,
        hidden: int,
        reference: str = "",
    ) -> None:
        super().__init__(codebook.shape[0], reference)
        self.patch_pixels, self.hidden, self.dim = int(patch_pixels), int(hidden), int(codebook.shape[1])
        self.encoder = _to_buffers(encoder)
        self.decoder = _to_buffers(decoder)
        self.register_buffer("codebook", codebook.detach().float().clone())

    def encode(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        x = _cells_to_image(patch_cells(images, grid, self.patch_pixels), grid)
        z = self.encoder(x.to(self.codebook.dtype)).float()
        return nearest(z.permute(0, 2, 3, 1).reshape(-1, self.dim), self.codebook.float())[0]

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, grid: int) -> torch.Tensor:
        q = self.codebook[ids].reshape(ids.shape[0], grid, grid, self.dim).permute(0, 3, 1, 2)
        return _image_to_cells(self.decoder(q).float(), grid).flatten(2)

    def config(self) -> dict[str, Any]:
        return {"codes": self.codes, "patch_pixels": self.patch_pixels, "hidden": self.hidden, "dim": self.dim}

    @classmethod
    def empty(cls, config: dict[str, Any]) -> VQVAETokenizer:
        p, hidden, dim = int(config["patch_pixels"]), int(config["hidden"]), int(config["dim"])
        enc, dec = _vqvae_nets(p, hidden, dim)
        return cls(enc, dec, torch.zeros(int(config["codes"]), dim), p, hidden)


def _jit_load(data: bytes, device: torch.device) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; users' dVAE encoders are scripted
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(io.BytesIO(data), map_location=device)


class TorchScriptTokenizer(VisualTokenizer):
    """A user's TorchScript encoder: images -> logits [B, codes, h, w] (argmax) or ids [B, h, w].

    The scripted file's bytes are a uint8 buffer (so the checkpoint holds the encoder); the
    module is loaded from them once per device.
    """

    kind = "torchscript"

    def __init__(
        self,
        script: bytes,
        codes: int | None = None,
        input_size: int | None = None,
        input_range: str = "clip",
        reference: str = "",
    ) -> None:
        if input_range not in ("clip", "unit"):
            raise TokenizerError(
                f"visual tokenizer {reference}: input_range must be 'clip' or 'unit', not {input_range!r}"
            )
        try:
            module = _jit_load(script, torch.device("cpu"))
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError/zip errors
            raise TokenizerError(
                f"visual tokenizer {reference or 'script'}: not a TorchScript module ({type(exc).__name__})"
            ) from None
        if codes is None:
            found = next(
                (getattr(module, a) for a in ("codes", "vocab_size", "num_tokens") if hasattr(module, a)), None
            )
            codes = int(found) if isinstance(found, int) else CODES
        super().__init__(codes, reference)
        self.input_size, self.input_range = input_size, input_range
        self.register_buffer("script", torch.frombuffer(bytearray(script), dtype=torch.uint8))
        self.__dict__["_modules_by_device"] = {torch.device("cpu"): module.eval()}

    def _module(self, device: torch.device) -> torch.jit.ScriptModule:
        cache = self.__dict__["_modules_by_device"]
        if device not in cache:
            cache[device] = _jit_load(self.script.cpu().numpy().tobytes(), device).eval()
        return cache[device]

    def __getstate__(self) -> dict[str, Any]:  # ScriptModules do not pickle: reload from the bytes
        state = self.__dict__.copy()
        state["_modules_by_device"] = {}
        return state

    def _load_from_state_dict(self, state_dict, prefix, *args: Any, **kwargs: Any) -> None:  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.__dict__["_modules_by_device"] = {}  # new bytes: reload lazily

    def encode(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        x = images
        if self.input_range == "unit":
            mean = torch.as_tensor(MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.as_tensor(STD, device=x.device).view(1, 3, 1, 1)
            x = (x * std + mean).clamp(0, 1)
        if self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True)
        out = self._module(x.device)(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.dim() not in (3, 4):
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise TokenizerError(
                f"visual tokenizer {self.reference}: the encoder returned {shape}; "
                "expected logits [B, codes, h, w] or ids [B, h, w]"
            )
        if out.dim() == 4:
            if out.shape[1] != self.codes:
                raise TokenizerError(
                    f"visual tokenizer {self.reference}: the encoder gives {out.shape[1]} logits per patch, "
                    f"expected {self.codes} codes (pass codes=...)"
                )
            out = out.argmax(1)
        h, w = out.shape[-2:]
        if (h, w) != (grid, grid):
            size = f"input_size={self.input_size}" if self.input_size else f"input {images.shape[-1]}px"
            raise GridMismatch(
                f"visual tokenizer {self.reference}: the encoder gives a {h}x{w} token grid ({size}) but the ViT "
                f"has a {grid}x{grid} patch grid; use an encoder (or input_size) giving {grid}x{grid}"
            )
        ids = out.long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.codes):
            raise TokenizerError(
                f"visual tokenizer {self.reference}: the encoder returned ids outside [0, {self.codes})"
            )
        return ids

    def config(self) -> dict[str, Any]:
        return {"codes": self.codes, "input_size": self.input_size, "input_range": self.input_range}


KINDS: dict[str, type[VisualTokenizer]] = {"kmeans": KMeansTokenizer, "vqvae": VQVAETokenizer}


# ------------------------------------------------------------------ measuring


@torch.no_grad()
def reconstruction_error(tokenizer: VisualTokenizer, images: torch.Tensor, grid: int, batch_size: int = 256) -> float:
    """MSE between the patch vectors of `images` and their decoded reconstruction (held-out images)."""
    p = getattr(tokenizer, "patch_pixels", None)
    if p is None:
        raise TokenizerError(f"visual tokenizer {tokenizer.reference}: a {tokenizer.kind} tokenizer has no decoder")
    device = next(iter(tokenizer.buffers())).device
    total, count = 0.0, 0
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device)
        target = patch_vectors(batch, grid, p)
        rec = tokenizer.decode(tokenizer(batch, grid), grid)
        total += float(((rec - target) ** 2).sum())
        count += target.numel()
    return total / max(1, count)


@torch.no_grad()
def mean_patch_error(train: torch.Tensor, held_out: torch.Tensor, grid: int, patch_pixels: int = PATCH_PIXELS) -> float:
    """The baseline: MSE of predicting every held-out patch vector with the training images' mean patch."""
    mean = patch_vectors(train, grid, patch_pixels).reshape(-1, 3 * patch_pixels**2).mean(0)
    return float(((patch_vectors(held_out, grid, patch_pixels) - mean) ** 2).mean())


@torch.no_grad()
def code_counts(tokenizer: VisualTokenizer, images: torch.Tensor, grid: int, batch_size: int = 256) -> torch.Tensor:
    """How often each code is the token of a patch of `images` ([codes] counts)."""
    device = next(iter(tokenizer.buffers())).device
    counts = torch.zeros(tokenizer.codes, dtype=torch.long)
    for start in range(0, images.shape[0], batch_size):
        ids = tokenizer(images[start : start + batch_size].to(device), grid).flatten().cpu()
        counts += torch.bincount(ids, minlength=tokenizer.codes)
    return counts


# ------------------------------------------------------------------ learning


class _Clock:
    """Seconds of learning: the time spent in checkpoint callbacks is not counted."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.start, self.paused = device, time.perf_counter(), 0.0

    def seconds(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - self.start - self.paused

    def pause(self, fn: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        fn()
        self.paused += time.perf_counter() - t0


def _device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _kmeans_tokenizer(
    centroids: torch.Tensor, x_stats: tuple[torch.Tensor, torch.Tensor] | None, ids: torch.Tensor, p: int
) -> KMeansTokenizer:
    k = centroids.shape[0]
    if x_stats is None:
        return KMeansTokenizer(centroids.cpu(), p)
    means, stds = x_stats
    counts = torch.bincount(ids, minlength=k).float()
    mean_of = torch.zeros(k, device=ids.device).index_add_(0, ids, means) / counts.clamp_min(1)
    std_of = torch.zeros(k, device=ids.device).index_add_(0, ids, stds) / counts.clamp_min(1)
    mean_of[counts == 0], std_of[counts == 0] = means.mean(), stds.mean()
    return KMeansTokenizer(centroids.cpu(), p, True, mean_of.cpu(), std_of.cpu())


def learn_kmeans(
    patches: torch.Tensor,
    codes: int = CODES,
    *,
    iters: int = 20,
    seconds: float | None = None,
    seed: int = 0,
    init: str = "random",
    normalize: bool = False,
    tol: float = 1e-4,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> KMeansTokenizer:
    """Lloyd k-means over patch vectors [N, 3*p*p] (from `patch_vectors`) -> a KMeansTokenizer.

    init: "random" (distinct-index sample of the patches, seeded) or "kmeans++" (D^2
    sampling, seeded; slower for thousands of codes). Stops after `iters` iterations, when
    the mean squared distance improves by less than `tol` (relative), or once `seconds` of
    learning have passed. An empty cluster is re-seeded with the patch farthest from its
    centroid. `progress` gets {"step", "steps", "mse", "seconds", "used"} per iteration;
    `checkpoint(seconds, tokenizer)` is called after each iteration (its time not counted).
    """
    x = patches.reshape(patches.shape[0], -1).float()
    n, d = x.shape
    p = int(round(math.sqrt(d / 3)))
    if 3 * p * p != d:
        raise ValueError(f"learn_kmeans: patch vectors have {d} values, expected 3*p*p")
    if codes < 2:
        raise TokenizerError(f"kmeans: --codes {codes}: need at least 2 codes")
    if n < codes:
        raise TokenizerError(f"kmeans: {n} patches for {codes} codes; need at least as many patches as codes")
    if init not in ("random", "kmeans++"):
        raise TokenizerError(f"kmeans: init {init!r}: use 'random' or 'kmeans++'")
    dev = _device(device)
    x = x.to(dev)
    stats = None
    if normalize:
        x, means, stds = _normalise_patches(x)
        stats = (means, stds)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    clock = _Clock(dev)
    if init == "random":
        centroids = x[torch.randperm(n, generator=gen)[:codes].to(dev)].clone()
    else:
        centroids = _kmeans_plus_plus(x, codes, gen)
    ids, dist = nearest(x, centroids)
    previous = float("inf")
    for step in range(1, iters + 1):
        counts = torch.bincount(ids, minlength=codes)
        sums = torch.zeros_like(centroids).index_add_(0, ids, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].to(x.dtype)
        empty = (~filled).nonzero().flatten()
        if empty.numel():  # re-seed: the patches worst served by their centroid
            far = dist.topk(min(n, int(empty.numel()))).indices
            centroids[empty[: far.numel()]] = x[far]
        ids, dist = nearest(x, centroids)
        mse = float(dist.mean()) / d
        elapsed = clock.seconds()
        used = int((torch.bincount(ids, minlength=codes) > 0).sum())
        if progress:
            progress({"step": step, "steps": iters, "mse": mse, "seconds": elapsed, "used": used})
        if checkpoint:
            snapshot = _kmeans_tokenizer(centroids, stats, ids, p)
            clock.pause(lambda s=snapshot, t=elapsed: checkpoint(t, s))
        converged = previous < float("inf") and previous - mse <= tol * previous
        previous = mse
        if converged or (seconds is not None and clock.seconds() >= seconds):
            break
    return _kmeans_tokenizer(centroids, stats, ids, p)


def _kmeans_plus_plus(x: torch.Tensor, codes: int, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    chosen = [int(torch.randint(n, (1,), generator=gen))]
    best = ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(1, codes):
        weights = best.cpu().double()
        total = float(weights.sum())
        pick = (
            int(torch.multinomial(weights / total, 1, generator=gen))
            if total > 0
            else int(torch.randint(n, (1,), generator=gen))
        )
        chosen.append(pick)
        best = torch.minimum(best, ((x - x[pick]) ** 2).sum(1))
    return x[torch.tensor(chosen, device=x.device)].clone()


class _VQVAE(nn.Module):
    def __init__(self, patch_pixels: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.encoder, self.decoder = _vqvae_nets(patch_pixels, hidden, dim)


def learn_vqvae(
    images: torch.Tensor,
    grid: int,
    codes: int = CODES,
    *,
    patch_pixels: int = PATCH_PIXELS,
    hidden: int = 64,
    dim: int = 32,
    batch_size: int = 64,
    steps: int = 2000,
    seconds: float | None = None,
    lr: float = 2e-3,
    decay: float = 0.99,
    beta: float = 0.25,
    restart_after: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: float = 10.0,
) -> VQVAETokenizer:
    """A small VQ-VAE over the patch cells of `images` [N, 3, H, W] (CLIP-normalised) -> a VQVAETokenizer.

    Encoder: log2(p) stride-2 convs + a residual block -> one `dim`-vector per cell; VQ with
    `codes` entries, EMA updates (`decay`), a code unused for `restart_after` steps (default:
    3x codes / latents per step, at least 10) restarted at a random current latent; straight-through gradients, commitment weight `beta`;
    decoder mirrors the encoder back to p×p per cell; loss = MSE on the area-resized cells.
    Stops after `steps` steps or `seconds` of learning. `progress` gets {"step", "steps",
    "mse", "seconds", "used"}; `checkpoint(seconds, tokenizer)` runs every `checkpoint_every`
    seconds of learning and at the end (its time not counted).
    """
    if codes < 2:
        raise TokenizerError(f"vqvae: --codes {codes}: need at least 2 codes")
    dev = _device(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    target_all = _cells_to_image(patch_cells(images, grid, patch_pixels), grid)  # [N, 3, G*p, G*p]
    n = target_all.shape[0]
    net = _VQVAE(patch_pixels, hidden, dim).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    clock = _Clock(dev)

    def batch() -> torch.Tensor:
        return target_all[torch.randint(n, (min(batch_size, n),), generator=gen)].to(dev)

    with torch.no_grad():  # codebook init: latents of the untrained encoder
        lat = []
        while sum(t.shape[0] for t in lat) < codes and len(lat) < 64:
            lat.append(net.encoder(batch()).permute(0, 2, 3, 1).reshape(-1, dim))
        pool = torch.cat(lat)
        pick = torch.randint(pool.shape[0], (codes,), generator=gen).to(dev)
        embed = pool[pick] + 0.01 * torch.randn(codes, dim, generator=gen).to(dev)
    cluster_size = torch.ones(codes, device=dev)
    embed_sum = embed.clone()
    last_used = torch.zeros(codes, dtype=torch.long, device=dev)

    def snapshot() -> VQVAETokenizer:
        enc, dec = _vqvae_nets(patch_pixels, hidden, dim)
        enc.load_state_dict(net.encoder.state_dict())
        dec.load_state_dict(net.decoder.state_dict())
        return VQVAETokenizer(enc, dec, embed.cpu(), patch_pixels, hidden)

    latents_per_step = min(batch_size, n) * grid * grid
    # a code a step's latents would pick ~latents/codes times: unused for 3x the steps it takes to
    # expect one pick (at least 10 steps), it is dead and restarted at a current latent
    restart_after = restart_after or max(10, math.ceil(3 * codes / latents_per_step))
    next_checkpoint = checkpoint_every
    for step in range(1, steps + 1):
        x = batch()
        z = net.encoder(x)
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
        ids, _ = nearest(flat.detach(), embed)
        q = embed[ids]
        commit = F.mse_loss(flat, q)
        q_st = flat + (q - flat).detach()
        rec = net.decoder(q_st.reshape(z.shape[0], z.shape[2], z.shape[3], dim).permute(0, 3, 1, 2))
        mse = F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        (mse + beta * commit).backward()
        opt.step()
        with torch.no_grad():  # EMA codebook (van den Oord et al. 2017, appendix)
            counts = torch.bincount(ids, minlength=codes).float()
            sums = torch.zeros_like(embed).index_add_(0, ids, flat.detach())
            cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
            embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
            total = cluster_size.sum()
            smoothed = (cluster_size + 1e-5) / (total + codes * 1e-5) * total
            embed = embed_sum / smoothed[:, None]
            last_used[counts > 0] = step
            dead = (step - last_used > restart_after).nonzero().flatten()
            if dead.numel():
                src = flat.detach()[torch.randint(flat.shape[0], (dead.numel(),), generator=gen).to(dev)]
                embed[dead] = src
                embed_sum[dead] = src * smoothed[dead, None]
                last_used[dead] = step
        elapsed = clock.seconds()
        if progress:
            progress(
                {
                    "step": step,
                    "steps": steps,
                    "mse": float(mse.detach()),
                    "seconds": elapsed,
                    "used": int((counts > 0).sum()),
                }
            )
        done = step == steps or (seconds is not None and elapsed >= seconds)
        if checkpoint and (elapsed >= next_checkpoint or done):
            next_checkpoint = elapsed + checkpoint_every
            tok = snapshot()
            clock.pause(lambda s=tok, t=elapsed: checkpoint(t, s))
        if done:
            break
    return snapshot()


# ------------------------------------------------------------------ loading


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def load_file(path: str, reference: str | None = None, **options: Any) -> VisualTokenizer:
    """A tokenizer from a local `.pt` file saved by `VisualTokenizer.save`, or a TorchScript encoder."""
    if not os.path.isfile(path):
        raise MissingTokenizer(f"visual tokenizer {path}: no such file")
    ref = reference or f"{os.path.abspath(path)} sha256:{sha256_of(path)[0][:12]}"
    if _is_torchscript(path):
        with open(path, "rb") as f:
            return TorchScriptTokenizer(f.read(), reference=ref, **options)
    if options:
        raise TokenizerError(f"visual tokenizer {path}: options {sorted(options)} apply to TorchScript encoders only")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip/torch errors all mean "not ours"
        raise TokenizerError(
            f"visual tokenizer {path}: not a lipforge tokenizer (.pt) or TorchScript encoder ({type(exc).__name__})"
        ) from None
    kind = blob.get("kind") if isinstance(blob, dict) and blob.get("format") == FORMAT else None
    if kind not in (*KINDS, TorchScriptTokenizer.kind):
        raise TokenizerError(
            f"visual tokenizer {path}: not a lipforge tokenizer (expected a {FORMAT} file from "
            f"`{BUILD_HINT}` or a TorchScript encoder)"
        )
    if kind == TorchScriptTokenizer.kind:  # a saved TorchScript tokenizer: the script is in the state
        tok = TorchScriptTokenizer(blob["state_dict"]["script"].numpy().tobytes(), reference=ref, **blob["config"])
    else:
        tok = KINDS[kind].empty(blob["config"])  # type: ignore[attr-defined]
        tok.load_state_dict(blob["state_dict"])
    tok.reference = ref
    tok.meta = dict(blob.get("meta") or {})
    return tok


def load_visual_tokenizer(root: str, spec: str, *, name: str = ARTIFACT, **options: Any) -> VisualTokenizer:
    """The tokenizer named by `spec`: a local path (`.pt` from this module or a TorchScript
    encoder; `options`: codes, input_size, input_range for the latter) or `NAME@VERSION`
    (the `name` artifact recorded for that version under `root`)."""
    if os.path.exists(spec) or "@" not in spec or "/" in spec or spec.endswith((".pt", ".pth", ".ts", ".jit")):
        if os.path.isdir(spec):
            raise TokenizerError(f"visual tokenizer {spec}: is a directory, expected a .pt or TorchScript file")
        return load_file(spec, **options)
    dataset, version = resolve(root, spec)
    ref = f"{dataset}@{version}"
    if name not in artifacts.list_artifacts(root, ref):
        raise MissingTokenizer(f"{ref} has no {name!r} artifact recorded under {root}; build one: `{BUILD_HINT} {ref}`")
    entry = artifacts.get_artifact(root, ref, name)
    path = artifacts.artifact_path(root, ref, name)
    return load_file(path, reference=f"{ref} {name} sha256:{entry['sha256'][:12]}", **options)
