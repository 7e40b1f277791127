"""`python -m training tokenizer build|show NAME@VERSION`: learn a visual tokenizer over a
version's images and store it as the version's artifact `visual-tokenizer`.

    python -m training tokenizer build demo@1 [--method kmeans|vqvae] [--codes 8192]
        [--patch-pixels 8] [--preset tiny] [--grid G] [--max-images N] [--seconds S]
        [--seed 0] [--root ./data]
    python -m training tokenizer show demo@1 [--json]

Images are read in shard order (`training.data.raw_samples`) and prepared exactly as the
trainer prepares them (`training.data.load_image` at the preset's image size); every 10th
image is held out to measure the reconstruction error. The grid defaults to the preset's
patch grid (image_size / patch_size: `tiny` is 64 / 8 = 8). The tokenizer file goes to
`{root}/{dataset}/v{N}/artifacts/visual-tokenizer/` and is listed in that version's
`artifacts.json` (catalog.artifacts); `python -m catalog show NAME@VER` lists it and
`training.visual_tokenizer.load_visual_tokenizer(root, "NAME@VER")` loads it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from catalog import artifacts, console, storage, versions
from catalog.errors import UserError
from training import visual_tokenizer as vt
from training.data import load_image, raw_samples
from training.model import load_preset

METHODS = ("kmeans", "vqvae")
DEFAULT_METHOD = "kmeans"  # lower held-out error per second of learning (docs/benchmarks.md)
HELD_OUT_EVERY = 10


class TokenizerOptionError(UserError, ValueError):
    """A `tokenizer build` option is out of range; the message names the option."""


def default_root() -> str:
    return os.environ.get("LIPFORGE_ROOT") or "data"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tokenizer", help="learn or show the visual tokenizer (MIM targets) of a dataset version")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="learn a codebook over a version's image patches and record it as an artifact")
    b.add_argument("ref", metavar="NAME@VERSION")
    b.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"default {DEFAULT_METHOD}")
    b.add_argument("--codes", type=int, default=vt.CODES, help="codebook size (default 8192, DALL-E's)")
    b.add_argument("--patch-pixels", type=int, default=vt.PATCH_PIXELS, help="each patch is area-resized to PxP")
    b.add_argument("--preset", default="tiny", help="model preset giving the image size and patch grid")
    b.add_argument("--grid", type=int, default=None, help="patch grid (default: preset image_size / patch_size)")
    b.add_argument("--max-images", type=int, default=2000, help="read at most N images (every 10th held out)")
    b.add_argument("--seconds", type=float, default=None, help="stop learning after S seconds")
    b.add_argument("--iters", type=int, default=None, help="k-means iterations (20) or VQ-VAE steps (2000)")
    b.add_argument("--normalize", action="store_true", help="k-means on per-patch mean/std normalised patches")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    b.add_argument("--name", default=vt.ARTIFACT, help=f"artifact name (default {vt.ARTIFACT})")
    b.add_argument("--root", default=default_root(), help="catalog root (default: $LIPFORGE_ROOT or ./data)")
    s = sub.add_parser("show", help="show the visual tokenizer artifact of a version")
    s.add_argument("ref", metavar="NAME@VERSION")
    s.add_argument("--name", default=vt.ARTIFACT)
    s.add_argument("--root", default=default_root())
    s.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    return build(args) if args.tokenizer_command == "build" else show(args)


def geometry(preset: str, grid: int | None) -> tuple[int, int]:
    """(image_size, grid) of a preset, the grid overridable; the grid must divide the image size."""
    try:
        vision = load_preset(preset)["vision"]
    except ValueError as exc:
        raise TokenizerOptionError(f"--preset: {exc}") from None
    size = int(vision["image_size"])
    grid = grid or size // int(vision["patch_size"])
    if grid < 1 or size % grid:
        raise TokenizerOptionError(f"--grid {grid}: does not divide the image size {size} of preset {preset!r}")
    return size, grid


def version_images(
    root: str, ref: str, image_size: int, max_images: int, on_image: Callable[[], None] | None = None
) -> tuple[str, torch.Tensor]:
    """('NAME@N', images [n, 3, S, S]): the first `max_images` images of a version, as the trainer sees them."""
    manifest = versions.load_manifest(root, ref)
    urls = versions.shard_uris(root, manifest)
    images = []
    for sample in raw_samples(urls, ("jpg",)):
        if len(images) >= max_images:
            break
        images.append(load_image(sample["jpg"], image_size))
        if on_image:
            on_image()
    resolved = f"{manifest['dataset']}@{manifest['version']}"
    if len(images) < 2:
        raise TokenizerOptionError(f"{resolved}: {len(images)} images; a tokenizer needs at least 2")
    return resolved, torch.stack(images)


def split(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held out): every 10th image is held out (at least one)."""
    held = torch.zeros(images.shape[0], dtype=torch.bool)
    held[HELD_OUT_EVERY - 1 :: HELD_OUT_EVERY] = True
    if not held.any():
        held[-1] = True
    return images[~held], images[held]


def learn(
    method: str,
    train: torch.Tensor,
    grid: int,
    codes: int,
    patch_pixels: int,
    *,
    iters: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    normalize: bool = False,
    device: str = "auto",
    progress: vt.Progress | None = None,
    checkpoint: vt.Checkpoint | None = None,
    checkpoint_every: float = 10.0,
) -> vt.VisualTokenizer:
    if method == "kmeans":
        patches = vt.patch_vectors(train, grid, patch_pixels).reshape(-1, 3 * patch_pixels**2)
        if patches.shape[0] < codes:
            raise TokenizerOptionError(
                f"{train.shape[0]} training images give {patches.shape[0]:,} patches, fewer than --codes {codes}: "
                f"pass --codes {patches.shape[0]} or fewer, or more images (--max-images)"
            )
        return vt.learn_kmeans(
            patches,
            codes,
            iters=iters or 20,
            seconds=seconds,
            seed=seed,
            normalize=normalize,
            device=device,
            progress=progress,
            checkpoint=checkpoint,
        )
    return vt.learn_vqvae(
        train,
        grid,
        codes,
        patch_pixels=patch_pixels,
        steps=iters or 2000,
        seconds=seconds,
        seed=seed,
        device=device,
        progress=progress,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
    )


def _check_options(args: argparse.Namespace) -> None:
    if args.codes < 2:
        raise TokenizerOptionError(f"--codes {args.codes}: need at least 2")
    if args.patch_pixels < 1:
        raise TokenizerOptionError(f"--patch-pixels {args.patch_pixels}: need at least 1")
    if args.max_images < 2:
        raise TokenizerOptionError(f"--max-images {args.max_images}: need at least 2")
    if args.seconds is not None and args.seconds <= 0:
        raise TokenizerOptionError(f"--seconds {args.seconds}: must be positive")
    if args.iters is not None and args.iters < 1:
        raise TokenizerOptionError(f"--iters {args.iters}: need at least 1")
    if args.normalize and args.method != "kmeans":
        raise TokenizerOptionError("--normalize applies to --method kmeans only")
    if args.device not in ("auto", "cpu") and not (args.device.startswith("cuda") and torch.cuda.is_available()):
        raise TokenizerOptionError(f"--device {args.device}: use auto, cpu or cuda (cuda: only with a GPU)")
    artifacts.check_name(args.name)


def build(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    _check_options(args)
    image_size, grid = geometry(args.preset, args.grid)
    dataset, version = versions.resolve(args.root, args.ref)
    ref = f"{dataset}@{version}"
    with console.progress(desc="images", total=args.max_images, unit="img") as bar:
        _, images = version_images(args.root, ref, image_size, args.max_images, lambda: bar.update(1))
        bar.total = images.shape[0]
        bar.refresh()
    train, held_out = split(images)
    patches = int(train.shape[0]) * grid * grid
    if args.method == "kmeans" and patches < args.codes:
        raise TokenizerOptionError(
            f"{ref}: {train.shape[0]} training images give {patches:,} patches, fewer than --codes {args.codes}: "
            f"pass --codes {patches} or fewer, or more images (--max-images)"
        )
    steps = args.iters or (20 if args.method == "kmeans" else 2000)
    with console.progress(desc=args.method, total=steps, unit="it" if args.method == "kmeans" else "step") as bar:

        def progress(info: dict[str, Any]) -> None:
            bar.update(info["step"] - bar.n)
            bar.set_postfix_str(f"mse {info['mse']:.4f} used {info['used']}", refresh=False)

        t1 = time.perf_counter()
        tok = learn(
            args.method,
            train,
            grid,
            args.codes,
            args.patch_pixels,
            iters=args.iters,
            seconds=args.seconds,
            seed=args.seed,
            normalize=args.normalize,
            device=args.device,
            progress=progress,
        )
        learning = time.perf_counter() - t1
        bar.refresh()
    recon = vt.reconstruction_error(tok, held_out, grid)
    baseline = vt.mean_patch_error(train, held_out, grid, args.patch_pixels)
    used_train = int((vt.code_counts(tok, train, grid) > 0).sum())
    used_held = int((vt.code_counts(tok, held_out, grid) > 0).sum())
    meta = {
        "format": vt.FORMAT,
        "method": args.method,
        "codes": args.codes,
        "patch_pixels": args.patch_pixels,
        "normalize": bool(args.normalize),
        "grid": grid,
        "image_size": image_size,
        "preset": args.preset,
        "images": int(train.shape[0]),
        "held_out_images": int(held_out.shape[0]),
        "patches": patches,
        "codes_used": used_train,
        "codes_used_held_out": used_held,
        "recon_mse": round(recon, 6),
        "mean_patch_mse": round(baseline, 6),
        "learn_seconds": round(learning, 2),
        "seed": args.seed,
    }
    with tempfile.TemporaryDirectory(prefix="lipforge-tokenizer-") as tmp:
        local = os.path.join(tmp, f"{args.name}.pt")
        tok.save(local, meta)
        entry = artifacts.record_artifact(args.root, ref, args.name, vt.ARTIFACT_KIND, local, meta)
    where = storage.join(args.root, dataset, entry["path"])
    total = time.perf_counter() - t0
    print(
        f"tokenizer {ref} {args.name}: {args.method}, {args.codes} codes, patches {args.patch_pixels}x{args.patch_pixels} px, "
        f"grid {grid} (image {image_size}, preset {args.preset})"
    )
    print(f"images: {train.shape[0]} learned on ({meta['patches']:,} patches), {held_out.shape[0]} held out")
    print(
        f"codes used: {used_train} of {args.codes} ({100 * used_train / args.codes:.1f}%) on the training images, "
        f"{used_held} on the held-out ones"
    )
    print(
        f"reconstruction MSE (held out): {recon:.4f}  (mean-patch baseline {baseline:.4f}: "
        f"{100 * recon / baseline if baseline else 0:.1f}% of it)"
    )
    print(f"seconds: {total:.1f} ({learning:.1f} learning)")
    print(f"stored: {where} ({entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:16]}), recorded in artifacts.json")
    return 0


def show(args: argparse.Namespace) -> int:
    dataset, version = versions.resolve(args.root, args.ref)
    ref = f"{dataset}@{version}"
    if args.name not in artifacts.list_artifacts(args.root, ref):
        raise vt.MissingTokenizer(
            f"{ref} has no {args.name!r} artifact recorded under {args.root}; build one: `{vt.BUILD_HINT} {ref}`"
        )
    entry = artifacts.get_artifact(args.root, ref, args.name)
    if args.json:
        print(json.dumps({"ref": ref, "name": args.name, **entry}, indent=2, sort_keys=True))
        return 0
    meta = entry.get("meta", {})
    print(f"{ref} {args.name}: {entry['kind']}  created {entry['created']}")
    print(f"file: {entry['path']}  {entry['bytes']:,} bytes  sha256 {entry['sha256'][:16]}")
    for key in sorted(meta):
        print(f"  {key}: {meta[key]}")
    return 0
