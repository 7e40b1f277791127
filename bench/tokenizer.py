"""Visual tokenizer codebooks side by side: k-means vs VQ-VAE, held-out reconstruction
error against seconds of learning, on the same images in one run.

    .venv/bin/python bench/tokenizer.py --data ./data --dataset demo@1     (a catalog version)
    .venv/bin/python bench/tokenizer.py --data ../shared/realdata/flickr    (a folder of .jpg photos)
        [--max-images 1000] [--codes 8192] [--preset tiny] [--grid G] [--patch-pixels 8]
        [--seconds 60] [--methods kmeans,vqvae,kmeans-norm] [--threads 1] [--device cpu]

Time is CPU seconds of this process (`--threads 1`, the default, makes them per-core
seconds; the dev machine is shared, and CPU time is what other jobs disturb least), with
wall seconds beside. Images are prepared as the trainer prepares them
(`training.data.load_image` at the preset's image size, CLIP-normalised); every 10th is
held out, exactly as `python -m training tokenizer build` splits them. Each method learns
for `--seconds` of wall time (the time spent measuring checkpoints is not counted) and its
held-out reconstruction MSE (patch vectors vs decoded patches,
`training.visual_tokenizer.reconstruction_error`) is measured at
checkpoints. `kmeans-norm` is k-means on per-patch mean/std normalised patches (decoded with
each code's mean patch statistics): the measurement behind the `normalize` default. Prints
a curve table, a final table (method, seconds, recon MSE, codes used, MSE ratio vs the
other) and which method gives the lower error per second of learning.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training import visual_tokenizer as vt  # noqa: E402
from training.data import load_image  # noqa: E402
from training.tokenizer_cli import geometry, learn, split, version_images  # noqa: E402

MARKS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300)


def folder_images(folder: Path, size: int, max_images: int) -> torch.Tensor:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[:max_images]
    if len(files) < 2:
        raise SystemExit(f"bench: {folder} holds {len(files)} .jpg files; need at least 2")
    return torch.stack([load_image(p.read_bytes(), size) for p in files])


def run_method(
    name: str, train: torch.Tensor, held: torch.Tensor, grid: int, args: argparse.Namespace
) -> dict[str, object]:
    """Learn with one method; the curve is (CPU seconds of learning, held-out MSE) per checkpoint."""
    method = "vqvae" if name == "vqvae" else "kmeans"
    curve: list[tuple[float, float]] = []
    cpu0, spent = time.process_time(), [0.0]  # CPU time of this process; measuring is not counted

    def checkpoint(wall: float, tok: vt.VisualTokenizer) -> None:
        c0 = time.process_time()
        curve.append((c0 - cpu0 - spent[0], vt.reconstruction_error(tok, held, grid)))
        spent[0] += time.process_time() - c0
        print(
            f"  {name:12s} cpu {curve[-1][0]:7.1f} s  wall {wall:7.1f} s  held-out MSE {curve[-1][1]:.4f}", flush=True
        )

    t0 = time.perf_counter()
    tok = learn(
        method,
        train,
        grid,
        args.codes,
        args.patch_pixels,
        iters=10_000 if method == "kmeans" else 1_000_000,
        seconds=args.seconds,
        seed=args.seed,
        normalize=name == "kmeans-norm",
        device=args.device,
        checkpoint=checkpoint,
        checkpoint_every=args.seconds / 10,
    )
    wall = time.perf_counter() - t0
    final = vt.reconstruction_error(tok, held, grid)
    used = int((vt.code_counts(tok, train, grid) > 0).sum())
    used_held = int((vt.code_counts(tok, held, grid) > 0).sum())
    seconds = curve[-1][0] if curve else wall
    return {
        "name": name,
        "seconds": seconds,
        "wall": wall,
        "mse": final,
        "used": used,
        "used_held": used_held,
        "curve": curve,
    }


def at(curve: list[tuple[float, float]], t: float) -> float | None:
    """The error reached by `t` seconds of learning (the last checkpoint at or before it)."""
    reached = [mse for s, mse in curve if s <= t]
    return reached[-1] if reached else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a catalog root (with --dataset) or a folder of .jpg photos")
    ap.add_argument("--dataset", default=None, help="NAME@VERSION under --data")
    ap.add_argument("--max-images", type=int, default=1000)
    ap.add_argument("--codes", type=int, default=vt.CODES)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--grid", type=int, default=None)
    ap.add_argument("--patch-pixels", type=int, default=vt.PATCH_PIXELS)
    ap.add_argument("--seconds", type=float, default=60.0, help="learning seconds (wall) per method")
    ap.add_argument("--methods", default="kmeans,vqvae,kmeans-norm")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU seconds are per-core seconds)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size, grid = geometry(args.preset, args.grid)
    t0 = time.perf_counter()
    if args.dataset:
        source, images = version_images(args.data, args.dataset, size, args.max_images)
    else:
        source, images = str(args.data), folder_images(Path(args.data), size, args.max_images)
    train, held = split(images)
    load = os.getloadavg()[0]
    print(
        f"data: {source}: {train.shape[0]} images learned on ({train.shape[0] * grid * grid:,} patches), "
        f"{held.shape[0]} held out; image {size}, grid {grid}, patches {args.patch_pixels}x{args.patch_pixels} px, "
        f"{args.codes} codes; read in {time.perf_counter() - t0:.1f} s; {args.threads} threads, {args.device}; "
        f"load average {load:.1f}"
    )
    baseline = vt.mean_patch_error(train, held, grid, args.patch_pixels)
    print(f"mean-patch baseline (predict the training mean patch): held-out MSE {baseline:.4f}")
    results = [run_method(name, train, held, grid, args) for name in args.methods.split(",")]
    print(f"load average at the end {os.getloadavg()[0]:.1f}")

    marks = [m for m in MARKS if m <= max(r["seconds"] for r in results)] + [args.seconds]
    marks = sorted(set(marks))
    print("\nheld-out MSE reached by t CPU seconds of learning")
    print("| t (s) | " + " | ".join(r["name"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for t in marks:
        cells = [at(r["curve"], t) for r in results]
        print(f"| {t:g} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " |")

    by_name = {r["name"]: r for r in results}
    partner = {"kmeans": "vqvae", "vqvae": "kmeans", "kmeans-norm": "kmeans"}
    print(
        "\n| method | CPU s (wall s) | recon MSE (held out) | % of mean-patch MSE "
        "| codes used (train / held out) | MSE ratio vs other |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        other = by_name.get(partner.get(r["name"], ""))
        ratio = f"{r['mse'] / other['mse']:.2f} (vs {other['name']})" if other else "-"
        print(
            f"| {r['name']} | {r['seconds']:.1f} ({r['wall']:.1f}) | {r['mse']:.4f} | {100 * r['mse'] / baseline:.1f}% | "
            f"{r['used']:,} / {r['used_held']:,} of {args.codes:,} | {ratio} |"
        )
    main_two = {n: by_name[n] for n in ("kmeans", "vqvae") if n in by_name}
    if len(main_two) == 2:
        km, vq = main_two["kmeans"], main_two["vqvae"]
        common = min(km["seconds"], vq["seconds"])
        a, b = at(km["curve"], common), at(vq["curve"], common)
        if a is not None and b is not None:
            winner = "k-means" if a < b else "VQ-VAE"
            print(
                f"\nat {common:.0f} CPU s of learning: k-means {a:.4f}, VQ-VAE {b:.4f} (k-means/VQ-VAE {a / b:.2f}): "
                f"lower error per second of learning: {winner}"
            )
        first_vq = vq["curve"][-1][1]
        reach = next((s for s, mse in km["curve"] if mse <= first_vq), None)
        if reach is not None:
            print(f"k-means reaches VQ-VAE's final error ({first_vq:.4f}) after {reach:.1f} CPU s")
    if "kmeans-norm" in {r["name"] for r in results} and "kmeans" in main_two:
        norm = next(r for r in results if r["name"] == "kmeans-norm")
        better = "raw patches" if main_two["kmeans"]["mse"] <= norm["mse"] else "per-patch normalised patches"
        print(f"k-means on {better} reconstructs better from the token alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
