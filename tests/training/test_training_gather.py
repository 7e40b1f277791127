"""Two gloo workers with gather-with-grad give the single-process full-batch gradient (any batch sizes)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from pipelines.webserver import free_port
from training.objectives.clip import ClipObjective, ClipOptions
from training.objectives.filip import FilipObjective, FilipOptions, _prepare, filip_loss
from training.objectives.flava_contrastive import FlavaContrastiveObjective, FlavaContrastiveOptions
from training.objectives.gather import all_gather_no_grad, all_gather_with_grad, global_offset

B, N_IMG, N_TXT, D_IN, D = 8, 6, 5, 12, 8


def make_inputs():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(B, N_IMG, D_IN, generator=g, dtype=torch.float64)
    texts = torch.randn(B, N_TXT, D_IN, generator=g, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 3, 4, 1, 5, 3, 2])
    text_mask = torch.arange(N_TXT)[None] < lengths[:, None]
    return images, texts, text_mask


class Towers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.image = torch.nn.Linear(D_IN, D).double()
        self.text = torch.nn.Linear(D_IN, D).double()

    def forward(self, images, texts, text_mask):
        it, tt = F.normalize(self.image(images), dim=-1), F.normalize(self.text(texts), dim=-1)
        return {
            "image_tokens": it,
            "text_tokens": tt,
            "text_mask": text_mask,
            "image_features": F.normalize(it.mean(1), dim=-1),
            "text_features": F.normalize(tt.mean(1), dim=-1),
        }


def objectives():
    return [
        ClipObjective(ClipOptions()).double(),
        FilipObjective(FilipOptions(token_fraction=1.0, similarity_dtype="auto")).double(),
        FilipObjective(FilipOptions(token_fraction=0.4, similarity_dtype="auto")).double(),
    ]


def gradients(model, objective, images, texts, text_mask):
    outputs = model(images, texts, text_mask)
    objective(outputs, {}).backward()
    module = model.module if isinstance(model, DistributedDataParallel) else model
    return torch.cat([p.grad.flatten() for p in module.parameters()])


def selected_per_worker_gradient(images, texts, text_mask, fraction, world):
    """Single process: tokens chosen within each worker's half (FILIP: before the gather), then full-batch loss."""
    model = Towers()
    out = model(images, texts, text_mask)
    scale = FilipObjective(FilipOptions()).double().logit_scale()
    halves = [
        _prepare(out["image_tokens"][p], None, out["text_tokens"][p], text_mask[p], fraction, None, 1 << 20)
        for p in (slice(r * B // world, (r + 1) * B // world) for r in range(world))
    ]
    img, img_mask, txt, txt_mask = (torch.cat(parts) for parts in zip(*halves))
    filip_loss(img, txt, txt_mask, scale, image_mask=img_mask).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    images, texts, text_mask = make_inputs()
    part = slice(rank * B // world, (rank + 1) * B // world)
    grads = []
    for objective in objectives():
        model = DistributedDataParallel(Towers())
        grads.append(gradients(model, objective, images[part], texts[part], text_mask[part]))
    torch.save(grads, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes in a gloo group
def test_two_gloo_workers_match_single_process_full_batch_gradient(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    images, texts, text_mask = make_inputs()
    expected = [gradients(Towers(), objective, images, texts, text_mask) for objective in objectives()[:2]]
    expected.append(selected_per_worker_gradient(images, texts, text_mask, fraction=0.4, world=2))
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for name, g, e in zip(["clip", "filip", "filip-40%"], got, expected):
            assert e.abs().max() > 1e-4, name
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12, msg=f"{name}: rank {rank}")


# --- unequal per-worker batches, FLAVA's global and local contrastive losses -------------------

SPLITS = [(4, 4), (5, 3), (8, 0)]  # rows on rank 0 and rank 1 (the last: one worker without rows)
MODES = ["flava-global", "flava-local", "clip"]


class Trainee(torch.nn.Module):
    """Towers and objective under one DDP wrapper, as in training: the temperature is averaged too."""

    def __init__(self, objective):
        super().__init__()
        self.towers, self.objective = Towers(), objective

    def forward(self, images, texts, text_mask):
        return self.objective(self.towers(images, texts, text_mask), {})


def make_objective(mode):
    if mode == "clip":
        return ClipObjective(ClipOptions()).double()
    return FlavaContrastiveObjective(FlavaContrastiveOptions(mode=mode.split("-")[1])).double()


def grad_vector(module):
    return torch.cat([p.grad.flatten() for p in module.parameters()])


def split_slices(sizes):
    starts = [sum(sizes[:r]) for r in range(len(sizes))]
    return [slice(s, s + n) for s, n in zip(starts, sizes)]


def local_contrastive_reference(images, texts, text_mask, sizes):
    """Single process, written out: part r's rows against all columns, other parts' features constant."""
    trainee = Trainee(make_objective("flava-local"))
    out = trainee.towers(images, texts, text_mask)
    img, txt, scale = out["image_features"], out["text_features"], trainee.objective.logit_scale()
    total = img.new_zeros(())
    for part in split_slices(sizes):
        own = torch.zeros(img.shape[0], dtype=torch.bool)
        own[part] = True
        img_cols = torch.where(own[:, None], img, img.detach())
        txt_cols = torch.where(own[:, None], txt, txt.detach())
        for i in range(part.start, part.stop):
            i2t = scale * img[i] @ txt_cols.T
            t2i = scale * txt[i] @ img_cols.T
            total = total + (torch.logsumexp(i2t, 0) - i2t[i] + torch.logsumexp(t2i, 0) - t2i[i]) / 2
    (total / img.shape[0]).backward()
    return grad_vector(trainee)


def full_batch_reference(mode, images, texts, text_mask):
    trainee = Trainee(make_objective(mode))
    loss = trainee(images, texts, text_mask)
    loss.backward()
    return grad_vector(trainee), loss.detach()


def gather_helpers_check(rank, sizes):
    """all_gather_with_grad / all_gather_no_grad / global_offset with these row counts."""
    n = sizes[rank]
    start = sum(sizes[:rank])
    x = (torch.arange(n * 3, dtype=torch.float64).reshape(n, 3) + 100 * start).requires_grad_()
    y = torch.arange(n * 2 * 2, dtype=torch.float64).reshape(n, 2, 2) - start
    mask = torch.arange(n * 4).reshape(n, 4) % (rank + 2) == 0
    x_all, y_all = all_gather_with_grad(x, y.requires_grad_())
    weights = torch.arange(sum(sizes) * 3, dtype=torch.float64).reshape(-1, 3)
    (x_all * weights).sum().backward()  # every rank's loss reads every row: the owner's gradient sums them
    return {
        "offset": global_offset(n),
        "x_all": x_all.detach(),
        "y_all": y_all.detach(),
        "mask_all": all_gather_no_grad(mask),
        "x_grad": x.grad,
        "weights": weights[start : start + n],
    }


def unequal_worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    images, texts, text_mask = make_inputs()
    result = {}
    for sizes in SPLITS:
        part = split_slices(sizes)[rank]
        result[sizes, "gather"] = gather_helpers_check(rank, sizes)
        for mode in MODES:
            model = DistributedDataParallel(Trainee(make_objective(mode)))
            loss = model(images[part], texts[part], text_mask[part])
            loss.backward()
            result[sizes, mode] = (grad_vector(model.module), loss.detach())
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes in a gloo group
def test_flava_global_and_local_and_clip_with_equal_and_unequal_worker_batches(tmp_path):
    mp.spawn(unequal_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    images, texts, text_mask = make_inputs()
    got = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    for sizes in SPLITS:
        for rank in range(2):
            g = got[rank][sizes, "gather"]
            start, n = sum(sizes[:rank]), sizes[rank]
            assert g["offset"] == start
            assert g["x_all"].shape == (8, 3) and g["y_all"].shape == (8, 2, 2) and g["mask_all"].shape == (8, 4)
            for r, p in enumerate(split_slices(sizes)):
                rows = p.stop - p.start
                ramp = torch.arange(rows * 12, dtype=torch.float64)
                assert torch.equal(g["x_all"][p], ramp[: rows * 3].reshape(-1, 3) + 100 * p.start)
                assert torch.equal(g["y_all"][p], ramp[: rows * 4].reshape(-1, 2, 2) - p.start)
                assert torch.equal(g["mask_all"][p], torch.arange(rows * 4).reshape(-1, 4) % (r + 2) == 0)
            assert g["x_grad"].shape == (n, 3)
            torch.testing.assert_close(g["x_grad"], 2 * g["weights"])  # both ranks' losses, own rows only

        full, full_loss = full_batch_reference("flava-global", images, texts, text_mask)
        clip_full, _ = full_batch_reference("clip", images, texts, text_mask)
        local = local_contrastive_reference(images, texts, text_mask, sizes)
        torch.testing.assert_close(full, clip_full, rtol=1e-12, atol=1e-14)  # one loss, two implementations
        expected = {"flava-global": full, "flava-local": local, "clip": full}
        for rank in range(2):
            for mode in MODES:
                g, e = got[rank][sizes, mode][0], expected[mode]
                assert e.abs().max() > 1e-4, (sizes, mode)
                torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12, msg=f"{mode} {sizes}: rank {rank}")
        if min(sizes) > 0:  # with every row on one worker, local and global coincide
            assert (got[0][sizes, "flava-local"][0] - full).abs().max() > 1e-3, sizes
        mean_loss = (got[0][sizes, "flava-global"][1] + got[1][sizes, "flava-global"][1]) / 2
        assert mean_loss.item() == pytest.approx(full_loss.item(), rel=1e-12)  # the logged mean is the full loss


# --- DeCLIP with two workers: the NNS queue holds every worker's captions; MVS is full-batch ----


def declip_worker(rank, world, port, out_dir):
    from training.objectives import ModelInfo
    from training.objectives.declip_mvs import MultiViewObjective, MvsOptions
    from training.objectives.declip_nns import NearestNeighbourObjective, NnsOptions

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    feats = declip_inputs()
    part = slice(rank * B // world, (rank + 1) * B // world)
    nns = NearestNeighbourObjective(NnsOptions(queue_size=3 * B, images=("image",)), ModelInfo(embed_dim=D)).double()
    for step in range(2):  # step 0 fills (loss 0), step 1 searches both workers' captions
        out = {k: v[step][part] for k, v in feats.items()}
        nns({"text_features": out["text"], "features": {"image": out["image"]}}, {})
    mvs = MultiViewObjective(MvsOptions()).double()
    torch.manual_seed(0)
    towers = DistributedDataParallel(torch.nn.Linear(D, D).double())
    loss = mvs(mvs_outputs(towers, feats, part), {})
    loss.backward()
    torch.save(
        {"queue": nns.queue.state_dict(), "mvs_grad": towers.module.weight.grad.clone()},
        os.path.join(out_dir, f"declip{rank}.pt"),
    )
    dist.destroy_process_group()


def declip_inputs():
    g = torch.Generator().manual_seed(5)
    return {k: F.normalize(torch.randn(2, B, D, generator=g, dtype=torch.float64), dim=-1) for k in ("image", "text")}


def mvs_outputs(towers, feats, part):
    x = {k: v[0][part] for k, v in feats.items()}
    views = {"image": x["image"], "g1.jpg": x["image"].flip(1), "text": x["text"], "eda*.txt": x["text"].flip(1)}
    return {"features": {k: F.normalize(towers(v), dim=-1) for k, v in views.items()}}


@pytest.mark.slow  # two processes in a gloo group
def test_declip_nns_queue_gets_every_workers_features_and_mvs_matches_full_batch(tmp_path):
    from training.objectives.declip_mvs import MultiViewObjective, MvsOptions

    mp.spawn(declip_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    feats = declip_inputs()
    got = [torch.load(tmp_path / f"declip{rank}.pt") for rank in range(2)]
    # both workers hold the same queue: both steps' captions of BOTH workers, in rank order
    expected = torch.cat([feats["text"][0], feats["text"][1]])
    for rank in range(2):
        queue = got[rank]["queue"]
        assert int(queue["count"]) == 2 * B
        torch.testing.assert_close(queue["features"][: 2 * B], expected.to(queue["features"].dtype))
    torch.manual_seed(0)
    towers = torch.nn.Linear(D, D).double()
    MultiViewObjective(MvsOptions()).double()(mvs_outputs(towers, feats, slice(0, B)), {}).backward()
    for rank in range(2):
        torch.testing.assert_close(got[rank]["mvs_grad"], towers.weight.grad, rtol=1e-9, atol=1e-12)
