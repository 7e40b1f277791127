"""Two gloo workers with gather-with-grad give the single-process full-batch gradient."""

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
