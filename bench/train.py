"""Training-step benchmarks, ratios side by side (python bench/train.py [--device cuda]).

1. CLIP-only step (lipforge Trainee: DualEncoder + ClipObjective) vs the same model and
   batch with open_clip's ClipLoss in a plain loop: throughput ratio (target >= 0.95).
2. FILIP (25% tokens) + CLIP vs CLIP full step: time and peak memory ratios (GPU targets
   with ViT-B/32 batch 512: <= 1.15x time, <= 1.25x memory).
3. FLIP 50% masking: image-encoder forward+backward throughput vs unmasked (>= 1.8x).
   One model (mask_ratio 0.5), one batch; masked and unmasked steps alternate (masking
   switched with `set_masking`, as in FLIP's unmasked tuning), so both see the same load;
   medians after warm-up; on CPU with one intra-op thread (two threads on a shared machine
   stall in OpenMP barriers whenever one is descheduled, which swamps the ratio). Measured
   for the main preset and, on CPU, also for ViT-B/32 (--flip-preset/--flip-batch): a real
   encoder, whose per-token work dominates. At batch 8 on CPU the per-step weight traffic
   (reading ~88M weights, writing their gradients) does not shrink with masking and holds
   the ratio near 1.7; from batch 32 it is ~2.0, as with FLIP's large GPU batches.
4. On CUDA: ViT-B/16 bf16 samples/s and MFU (FLOPs counted by torch's FlopCounterMode).
Each case runs in a fresh process so peak memory (CUDA allocator peak, or max RSS on CPU)
is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

# run as a script: the repo root, not bench/ (whose sibling scripts shadow package names), is on the path
sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def _batch(preset: dict, batch: int, device: str) -> dict:
    from training.tokenizer import tokenize

    size = preset["vision"]["image_size"]
    captions = [f"a photo of shape number {i} in colour {i % 7} on the left" for i in range(batch)]
    text, mask = tokenize(captions)
    return {
        "image": torch.randn(batch, 3, size, size, device=device),
        "text": text.to(device),
        "text_mask": mask.to(device),
    }


def _timed(steps: dict, warmup: int, iters: int, device: str) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU seconds per call of each step; the steps alternate, so a
    shared machine's load falls on all of them alike."""

    def once(step) -> tuple[float, float]:
        if device == "cuda":
            torch.cuda.synchronize()
        w, c = time.perf_counter(), time.process_time()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - w, time.process_time() - c

    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(iters):
        for name, step in steps.items():
            times[name].append(once(step))
    return {
        name: {"wall": statistics.median(w for w, _ in t), "cpu": statistics.median(c for _, c in t)}
        for name, t in times.items()
    }


def case(kind: str, preset_name: str, batch: int, device: str, precision: str, iters: int, queue) -> None:
    torch.manual_seed(0)
    from open_clip.loss import ClipLoss

    from training.config import ObjectiveSpec, TrainConfig
    from training.model import load_preset
    from training.trainee import AMP_DTYPES, build_trainee

    objectives = {"clip": ObjectiveSpec()}
    if kind == "filip":
        objectives["filip"] = ObjectiveSpec(options={"token_fraction": 0.25})
    mask = 0.5 if kind == "flip" else 0.0
    cfg = TrainConfig(
        dataset="bench@1",
        precision=precision,
        objectives=objectives,
        model={"preset": preset_name, "mask_ratio": mask, "embed_dim": 256 if preset_name != "tiny" else None},
    )
    trainee = build_trainee(cfg).to(device)
    preset = load_preset(preset_name)
    data = _batch(preset, batch, device)
    amp = AMP_DTYPES[precision]
    opt = torch.optim.AdamW(trainee.parameters(), lr=1e-4)
    open_clip_loss = ClipLoss()

    def autocast():
        return torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None)

    def lipforge_step():
        with autocast():
            total, _ = trainee(data)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def open_clip_step():  # the plain loop: same model, open_clip's loss, its own temperature
        m = trainee.model
        with autocast():
            img, _ = m.encode_image(data["image"])
            txt, _ = m.encode_text(data["text"])
            loss = open_clip_loss(img, txt, trainee.objectives["clip"].log_scale.exp())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def image_step(masked: bool):  # the image encoder only: forward + backward, no optimiser
        trainee.model.set_masking(masked)
        with autocast():
            feats, _ = trainee.model.encode_image(data["image"])
        feats.float().sum().backward()
        trainee.zero_grad(set_to_none=True)

    if kind == "flip":
        assert trainee.model.training
        if device == "cpu":
            torch.set_num_threads(1)
        t = _timed(
            {"image_masked": lambda: image_step(True), "image_unmasked": lambda: image_step(False)},
            warmup=1,
            iters=iters,
            device=device,
        )
        queue.put(
            {
                name: {
                    "kind": name,
                    "preset": preset_name,
                    "batch": batch,
                    "s_per_step": v["wall"],
                    "cpu_s_per_step": v["cpu"],
                    "samples_per_s": batch / v["wall"],
                    "peak_mem_gib": float("nan"),
                }
                for name, v in t.items()
            }
        )
        return
    step = {"open_clip": open_clip_step, "clip": lipforge_step, "filip": lipforge_step}[kind]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = _timed({kind: step}, warmup=3, iters=iters, device=device)[kind]["wall"]
    out = {"kind": kind, "preset": preset_name, "batch": batch, "s_per_step": seconds, "samples_per_s": batch / seconds}
    if device == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        if kind == "clip" and precision == "bf16":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                lipforge_step()
            name = torch.cuda.get_device_name()
            peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
            out["tflops_per_s"] = counter.get_total_flops() / seconds / 1e12
            out["mfu"] = out["tflops_per_s"] / peak if peak else None
    else:
        out["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put(out)


def run(kind: str, preset: str, batch: int, args, iters: int | None = None) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=case, args=(kind, preset, batch, args.device, args.precision, iters or args.iters, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--preset", default=None, help="default: tiny on CPU, ViT-B-32 on CUDA")
    ap.add_argument("--batch", type=int, default=None, help="default: 128 on CPU, 512 on CUDA")
    ap.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument(
        "--flip-preset", default="ViT-B-32", help="FLIP ratio also on this encoder (CPU runs; 'none' to skip)"
    )
    ap.add_argument("--flip-batch", type=int, default=32)
    ap.add_argument("--flip-iters", type=int, default=3)
    args = ap.parse_args()
    gpu = args.device == "cuda"
    preset = args.preset or ("ViT-B-32" if gpu else "tiny")
    batch = args.batch or (512 if gpu else 128)
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    torch.set_num_threads(torch.get_num_threads())
    r = {k: run(k, preset, batch, args) for k in ("open_clip", "clip", "filip")}
    r.update(run("flip", preset, batch, args))

    def flip_row(res: dict, where: str) -> tuple[str, float, str]:
        return (
            f"FLIP 50% mask image fwd+bwd throughput / unmasked ({where})",
            res["image_masked"]["samples_per_s"] / res["image_unmasked"]["samples_per_s"],
            ">= 1.8",
        )

    rows = [
        (
            "CLIP step throughput: lipforge / open_clip loop",
            r["clip"]["samples_per_s"] / r["open_clip"]["samples_per_s"],
            ">= 0.95",
        ),
        ("FILIP+CLIP / CLIP step time", r["filip"]["s_per_step"] / r["clip"]["s_per_step"], "<= 1.15 (GPU, B/32 b512)"),
        (
            "FILIP+CLIP / CLIP peak memory",
            r["filip"]["peak_mem_gib"] / r["clip"]["peak_mem_gib"],
            "<= 1.25 (GPU, B/32 b512)",
        ),
        flip_row(r, f"{preset} b{batch}"),
    ]
    if not gpu and args.flip_preset != "none" and args.flip_preset != preset:
        big = run("flip", args.flip_preset, args.flip_batch, args, iters=args.flip_iters)
        r.update({f"{k}_{args.flip_preset}": v for k, v in big.items()})
        rows.append(flip_row(big, f"{args.flip_preset} b{args.flip_batch}"))
    print(
        f"device={args.device} preset={preset} batch={batch} precision={args.precision} threads={torch.get_num_threads()}"
    )
    for k, v in r.items():
        cpu = f" (cpu {v['cpu_s_per_step'] * 1e3:.1f} ms)" if "cpu_s_per_step" in v else ""
        print(
            f"  {k:24s} {v['s_per_step'] * 1e3:9.1f} ms/step{cpu} {v['samples_per_s']:9.1f} samples/s peak {v['peak_mem_gib']:.3f} GiB"
        )
    for name, ratio, target in rows:
        print(f"{name:55s} {ratio:6.3f}   target {target}")
    if gpu:
        b16 = run("clip", "ViT-B-16", batch, args)
        print(
            f"ViT-B/16 bf16 CLIP: {b16['samples_per_s']:.1f} samples/s, {b16.get('tflops_per_s', 0):.1f} TFLOP/s, MFU {b16.get('mfu')}"
        )
    print(json.dumps({"results": r, "ratios": {n: v for n, v, _ in rows}}))


if __name__ == "__main__":
    main()
