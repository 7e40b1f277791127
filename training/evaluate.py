"""Zero-shot image->text retrieval on held-out pairs (Recall@K by cosine similarity).

A retrieved caption counts as correct when its text equals the image's own caption, so
that identical captions of different images are not counted as misses.
"""

from __future__ import annotations

import random

import torch

from training.data import BatchSpec, decode_batch, raw_samples, resolve_shards
from training.model import DualEncoder


@torch.no_grad()
def retrieval(
    model: DualEncoder, root: str, ref: str, samples: int = 256, device: str | torch.device = "cpu", batch: int = 64
) -> dict[str, float]:
    _, urls = resolve_shards(root, ref)
    spec = BatchSpec(image_size=model.image_size)
    raw = []
    for s in raw_samples(urls, spec.read()):
        raw.append(s)
        if len(raw) == samples:
            break
    was_training = model.training
    model.eval()
    img, txt, captions = [], [], []
    for i in range(0, len(raw), batch):
        b = decode_batch(raw[i : i + batch], spec, random.Random(0))
        img.append(model.encode_image(b["image"].to(device))[0].float())
        txt.append(model.encode_text(b["text"].to(device))[0].float())
        captions += b["caption"]
    model.train(was_training)
    sim = torch.cat(img) @ torch.cat(txt).T
    ranked = sim.argsort(dim=1, descending=True).cpu()
    n = len(captions)
    hits = torch.tensor([[captions[j] == captions[i] for j in ranked[i, :5].tolist()] for i in range(n)])
    distinct = len(set(captions))
    return {
        "pairs": n,
        "i2t_r1": hits[:, 0].float().mean().item(),
        "i2t_r5": hits.any(1).float().mean().item(),
        "chance_r1": sum(captions.count(c) for c in captions) / (n * n),
        "distinct_captions": distinct,
    }
