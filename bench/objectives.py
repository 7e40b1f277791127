"""DeCLIP, FLAVA and SIMLA step time and peak memory relative to CLIP, side by side in one run.

    python bench/objectives.py                      # tiny preset, batch 32, CPU
    python bench/objectives.py --device cuda        # ViT-B-16, batch 128, bf16

Cases (each in a fresh process, so peak memory is its own; the same model and batch):
- `clip`: the CLIP objective alone (baseline).
- `declip`: CLIP 0.4 + SimSiam 0.2 + MLM 0.2 + MVS 0.2 + NNS 0.2 (queue 65,536, full), the
  model's image being the view g0, with g1 and an EDA view: the trainee encodes image+g1 in
  one ViT pass and caption+EDA in one causal text pass, plus the bidirectional MLM pass.
  Targets: <= 2.0x CLIP's step time on the CPU-tiny model, <= 1.6x on ViT-B/16.
- `flava`: FLAVA's mixture (0.70 paired / 0.15 image-only / 0.15 text-only, drawn per
  step as in training) with flava_contrastive, flava_mim (a k-means codebook of 8,192
  entries) and flava_mlm: the mean step time over the drawn steps.
- `simla`: SIMLA's Eq. 10 on the single-stream model with the same ViT (tiny: the tiny
  ViT under a 4-layer text transformer, 2 with cross-attention; CUDA: ViT-B/16 under
  12 text layers, 6 with cross-attention, preset `single_stream/base`): simla_itc (queues of
  65,536, full), simla_itm, simla_xmm (8,192 codes), simla_psl, with the momentum model.
  Beside it, ITM hard-negative sampling at the same batch: `sample_itm_negatives` (one
  Gumbel-max draw) against ALBEF's row-by-row `torch.multinomial` loop with `.item()`, each
  as a share of SIMLA's step (target: < 2% for the vectorised sampler).
A step is forward + backward + AdamW on pre-decoded batches (data loading runs in the
loader workers during training and is not part of it); medians after warm-up.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue as queue_module
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

CASES = ("clip", "declip", "flava", "simla")
SIMLA_PRESET = {"tiny": "tiny", "ViT-B-16": "base"}  # the single-stream preset with the same ViT


def batches(preset: dict, batch: int, device: str) -> dict[str, dict]:
    from training.tokenizer import tokenize

    size = preset["vision"]["image_size"]
    captions = [f"a photo of shape number {i} in colour {i % 7} on the left of a table" for i in range(batch)]
    eda = [c.replace(" of a table", "").replace("a photo", "photo") for c in captions]
    text, mask = tokenize(captions)
    eda_ids, eda_mask = tokenize(eda)
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, size, size, generator=g)
    view = torch.randn(batch, 3, size, size, generator=g)
    pair = {"modality": "pair", "image": image, "text": text, "text_mask": mask}
    declip = {**pair, "g1.jpg": view, "eda*.txt": eda_ids, "eda*.txt:mask": eda_mask}
    out = {
        "pair": pair,
        "declip": declip,
        "image": {"modality": "image", "image": image},
        "text": {"modality": "text", "text": text, "text_mask": mask},
    }
    return {k: {n: (v.to(device) if torch.is_tensor(v) else v) for n, v in b.items()} for k, b in out.items()}


def objectives_of(kind: str) -> tuple[dict, dict]:
    if kind == "clip":
        return {"clip": {"weight": 1.0}}, {}
    if kind == "declip":
        return {
            "clip": {"weight": 0.4},
            "declip_ss_image": {"weight": 0.2},
            "declip_mlm": {"weight": 0.2},
            "declip_mvs": {"weight": 0.2},
            "declip_nns": {"weight": 0.2},
        }, {"image_from": "g0.jpg"}
    if kind == "simla":
        return {
            "simla_itc": {"weight": 1.0},
            "simla_itm": {"weight": 1.0},
            "simla_xmm": {"weight": 1.0},
            "simla_psl": {"weight": 1.0},
        }, {}
    return {
        "flava_contrastive": {"weight": 1.0},
        "flava_mim": {"weight": 1.0},
        "flava_mlm": {"weight": 1.0},
    }, {}


def albef_itm_sampling(sim_i2t: torch.Tensor, sim_t2i: torch.Tensor) -> tuple[list[int], list[int]]:
    """ALBEF's hard-negative draw (models/model_pretrain.py): softmax, diagonal zeroed, one
    `torch.multinomial` and `.item()` per row and direction."""
    weights_i2t = torch.softmax(sim_i2t.float(), dim=1) + 1e-5
    weights_i2t.fill_diagonal_(0)
    weights_t2i = torch.softmax(sim_t2i.float(), dim=1) + 1e-5
    weights_t2i.fill_diagonal_(0)
    neg_image = [torch.multinomial(weights_t2i[b], 1).item() for b in range(sim_i2t.shape[0])]
    neg_text = [torch.multinomial(weights_i2t[b], 1).item() for b in range(sim_i2t.shape[0])]
    return neg_text, neg_image


def sampling_ms(batch: int, device: str, iters: int) -> dict[str, float]:
    """Median ms of one batch's ITM negatives: the vectorised sampler and ALBEF's loop."""
    from training.objectives import sample_itm_negatives

    g = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(2, batch, 256, generator=g), dim=-1).to(device)
    sim = feats[0] @ feats[1].T / 0.07
    out = {}
    for name, fn in (
        ("vectorised", lambda: sample_itm_negatives(sim, sim.T)),
        ("row_loop", lambda: albef_itm_sampling(sim, sim.T)),
    ):
        times = []
        for i in range(iters + 3):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            got = fn()
            if device == "cuda":  # the vectorised draw is asynchronous: count it until its result exists
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - start)
            del got
        out[name] = statistics.median(times) * 1e3
    return out


def case(kind: str, preset_name: str, batch: int, device: str, precision: str, iters: int, queue) -> None:
    torch.manual_seed(0)
    if device == "cpu":  # two threads on a shared 2-core machine stall in OpenMP barriers (bench/train.py)
        torch.set_num_threads(1)
    from training.config import TrainConfig
    from training.mixture import draw
    from training.model import load_preset
    from training.objectives.queue import FeatureQueue
    from training.trainee import AMP_DTYPES, build_trainee
    from training.visual_tokenizer import learn_kmeans, patch_vectors

    preset = load_preset(preset_name)
    objectives, data = objectives_of(kind)
    model_cfg = {"preset": preset_name}
    if kind == "simla":
        model_cfg = {"preset": SIMLA_PRESET.get(preset_name, preset_name), "family": "single_stream"}
        model_cfg["momentum"] = {"alpha_ramp_steps": 0}  # alpha at 0.4: every distillation pass runs
    cfg = TrainConfig(dataset="bench@1", precision=precision, objectives=objectives, data=data, model=model_cfg)
    tokenizer = None
    if kind in ("flava", "simla"):
        size, patch = preset["vision"]["image_size"], preset["vision"]["patch_size"]
        grid = size // patch
        images = torch.randn(max(1, -(-2 * 8192 // grid**2)), 3, size, size)
        vectors = patch_vectors(images, grid)
        tokenizer = learn_kmeans(vectors.reshape(-1, vectors.shape[-1]), codes=8192, iters=1, seed=0)
    trainee = build_trainee(cfg, visual_tokenizer=tokenizer).to(device)
    for objective in trainee.objectives.values():  # NNS at full cost: a full queue from the start
        for module in objective.modules():
            if isinstance(module, FeatureQueue):
                module.push(torch.nn.functional.normalize(torch.randn(module.size, module.dim, device=device), dim=-1))
    data_by_kind = batches(preset, batch, device)
    amp = AMP_DTYPES[precision]
    opt = torch.optim.AdamW([p for p in trainee.parameters() if p.requires_grad], lr=1e-4)
    mix = {"pair": 0.70, "image": 0.15, "text": 0.15}
    counter = {"step": 0}

    def batch_for() -> dict:
        if kind in ("clip", "simla"):
            return data_by_kind["pair"]
        if kind == "declip":
            return data_by_kind["declip"]
        names = list(mix)
        counter["step"] += 1
        return data_by_kind[names[draw(0, counter["step"], list(mix.values()))]]

    def step() -> None:
        b = batch_for()
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            total, _ = trainee(b)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    # FLAVA's steps differ by source: the mean over the drawn steps is its cost per step
    seconds = statistics.fmean(times) if kind == "flava" else statistics.median(times)
    out = {"kind": kind, "preset": preset_name, "batch": batch, "s_per_step": seconds, "samples_per_s": batch / seconds}
    if device == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if kind == "simla":
        out["itm_sampling_ms"] = sampling_ms(batch, device, iters)
    queue.put(out)


def run(kind: str, args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=case, args=(kind, args.preset, args.batch, args.device, args.precision, args.iters, q))
    p.start()
    while True:
        try:
            return q.get(timeout=5)
        except queue_module.Empty:
            if not p.is_alive():
                raise SystemExit(
                    f"bench case {kind!r} failed (exit code {p.exitcode}); its traceback is above"
                ) from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--preset", default=None, help="default: tiny on CPU, ViT-B-16 on CUDA")
    ap.add_argument("--batch", type=int, default=None, help="default: 32 on CPU, 128 on CUDA")
    ap.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2, help="cases alternate this many times (load spreads evenly)")
    args = ap.parse_args()
    gpu = args.device == "cuda"
    args.preset = args.preset or ("ViT-B-16" if gpu else "tiny")
    args.batch = args.batch or (128 if gpu else 32)
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    results: dict[str, list[dict]] = {k: [] for k in CASES}
    for _ in range(args.rounds):
        for kind in CASES:
            results[kind].append(run(kind, args))
    best = {k: min(v, key=lambda r: r["s_per_step"]) for k, v in results.items()}
    base = best["clip"]
    target = {"declip": 1.6 if args.preset == "ViT-B-16" else 2.0}
    print(
        f"objectives bench: {args.preset} batch {args.batch} {args.precision} on {args.device} (best of {args.rounds})"
    )
    print(f"{'case':8} {'ms/step':>9} {'samples/s':>10} {'peak GiB':>9} {'time x clip':>12} {'mem x clip':>11}  target")
    for kind in CASES:
        r = best[kind]
        ratio = r["s_per_step"] / base["s_per_step"]
        mem = r["peak_mem_gib"] / base["peak_mem_gib"]
        goal = f"<= {target[kind]:.1f}x {'ok' if ratio <= target[kind] else 'MISSED'}" if kind in target else ""
        print(
            f"{kind:8} {r['s_per_step'] * 1e3:9.1f} {r['samples_per_s']:10.1f} {r['peak_mem_gib']:9.3f} "
            f"{ratio:12.2f} {mem:11.2f}  {goal}"
        )
    sampling, step_ms = best["simla"]["itm_sampling_ms"], best["simla"]["s_per_step"] * 1e3
    print(f"ITM hard negatives for a batch of {args.batch} (share of SIMLA's {step_ms:.1f} ms step):")
    for name, ms in sampling.items():
        share = ms / step_ms
        goal = f"  target < 2% {'ok' if share < 0.02 else 'MISSED'}" if name == "vectorised" else ""
        print(f"  {name:10} {ms:8.3f} ms  {100 * share:6.2f}%{goal}")


if __name__ == "__main__":
    main()
