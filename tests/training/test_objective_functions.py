"""The pure objective building blocks and the feature queue against straightforward references."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.objectives import (
    OBJECTIVES,
    FeatureQueue,
    block_mask,
    clip_loss,
    info_nce,
    mask_tokens,
    mlm_loss,
    simsiam_loss,
)
from training.objectives.flava_contrastive import flava_contrastive_loss

MASK_ID, VOCAB, SPECIALS = 99, 100, (0, 97, 98)


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- simsiam_loss, info_nce --------------------------------------------------------------------


def test_simsiam_loss_equals_the_per_row_cosine_reference():
    p1, p2, z1, z2 = (randn(6, 5, seed=s) for s in range(4))

    def cos(a, b):
        return torch.stack([(a[i] @ b[i]) / (a[i].norm() * b[i].norm()) for i in range(a.shape[0])])

    want = -(cos(p1, z2).mean() + cos(p2, z1).mean()) / 2
    assert simsiam_loss(p1, p2, z1, z2).item() == pytest.approx(want.item(), rel=1e-12)
    assert simsiam_loss(p1, p2, p2, p1).item() == pytest.approx(-1.0)
    assert simsiam_loss(p1.half(), p2.half(), z1.half(), z2.half()).dtype == torch.float32


def test_simsiam_loss_stops_the_gradient_into_z():
    p1, p2, z1, z2 = (randn(4, 3, seed=s).requires_grad_() for s in range(4))
    simsiam_loss(p1, p2, z1, z2).backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0


def test_info_nce_equals_clip_loss_on_normalised_inputs():
    a, b = randn(8, 16, seed=5), randn(8, 16, seed=6)
    for scale in (1.0, 1 / 0.07, 100.0):
        s = torch.tensor(scale, dtype=torch.float64)
        want = clip_loss(F.normalize(a, dim=-1), F.normalize(b, dim=-1), s)
        assert info_nce(a, b, s).item() == pytest.approx(want.item(), rel=1e-12)
        assert info_nce(3 * a, 0.5 * b, s).item() == pytest.approx(want.item(), rel=1e-12)  # it normalises


def test_info_nce_equals_an_explicit_softmax_reference():
    a, b = F.normalize(randn(5, 4, seed=7), dim=-1), F.normalize(randn(5, 4, seed=8), dim=-1)
    s = 10.0
    sim = s * a @ b.T
    i2t = -torch.stack([sim[i, i] - torch.logsumexp(sim[i], 0) for i in range(5)]).mean()
    t2i = -torch.stack([sim[i, i] - torch.logsumexp(sim[:, i], 0) for i in range(5)]).mean()
    assert info_nce(a, b, s).item() == pytest.approx(((i2t + t2i) / 2).item(), rel=1e-12)


# --- mask_tokens ---------------------------------------------------------------------------------


def caption_batch(b=64, length=24, seed=0):
    """Start, body, end, padding: like the CLIP tokenizer's output."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, length + 1, (b,), generator=g)
    ids = torch.randint(1, 97, (b, length), generator=g)
    pos = torch.arange(length)[None]
    ids[:, 0] = 97
    ids = torch.where(pos == (lengths - 1)[:, None], torch.full_like(ids, 98), ids)
    attn = pos < lengths[:, None]
    ids[~attn] = 0
    return ids, attn


def test_mask_tokens_rates_and_untouched_positions():
    ids, attn = caption_batch()
    maskable = attn & ~torch.isin(ids, torch.tensor(SPECIALS))
    g = torch.Generator().manual_seed(123)
    selected = total = to_mask = to_random = kept = 0
    for _ in range(200):
        inp, labels = mask_tokens(ids, attn, MASK_ID, VOCAB, SPECIALS, generator=g)
        sel = labels != -100
        assert not (sel & ~maskable).any()  # only real, non-special tokens are selected
        assert torch.equal(inp[~sel], ids[~sel])  # nothing else changes (padding, specials)
        assert torch.equal(labels[sel], ids[sel])
        changed = inp[sel]
        assert not torch.isin(changed[changed != MASK_ID], torch.tensor(SPECIALS)).any()
        assert ((changed >= 0) & (changed < VOCAB)).all()
        selected += int(sel.sum())
        total += int(maskable.sum())
        to_mask += int((changed == MASK_ID).sum())
        kept += int((changed == ids[sel]).sum())
        to_random += int(((changed != MASK_ID) & (changed != ids[sel])).sum())
    assert selected / total == pytest.approx(0.15, abs=0.005)
    assert to_mask / selected == pytest.approx(0.8, abs=0.01)
    # a random replacement equals the original with probability ~1/96: count it with "kept"
    assert (kept + to_random) / selected == pytest.approx(0.2, abs=0.01)
    assert to_random / selected == pytest.approx(0.1 * 95 / 96, abs=0.01)


def test_mask_tokens_random_ids_cover_the_allowed_vocabulary_uniformly():
    ids = torch.full((1, 20000), 5)
    attn = torch.ones_like(ids, dtype=torch.bool)
    inp, labels = mask_tokens(ids, attn, mask_id=3, vocab_size=8, special_ids=(0, 6), prob=1.0)
    replaced = inp[(inp != 3) & (inp != 5)]
    counts = torch.bincount(replaced, minlength=8)
    assert counts[[0, 3, 6]].sum() == 0
    allowed = counts[[1, 2, 4, 7]].double()
    # 5 is allowed too but indistinguishable from "unchanged": the other four share ~10% * 4/5
    assert allowed.sum().item() == pytest.approx(20000 * 0.1 * 4 / 5, rel=0.1)
    assert (allowed / allowed.mean() - 1).abs().max() < 0.2


def test_mask_tokens_is_seeded():
    ids, attn = caption_batch(b=16)

    def run(seed):
        return mask_tokens(ids, attn, MASK_ID, VOCAB, SPECIALS, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_mask_tokens_with_nothing_selected_gives_a_zero_mlm_loss_with_gradient():
    ids, attn = caption_batch(b=4)
    inp, labels = mask_tokens(ids, attn, MASK_ID, VOCAB, SPECIALS, prob=0.0)
    assert torch.equal(inp, ids) and (labels == -100).all()
    logits = randn(4, ids.shape[1], VOCAB, seed=9).requires_grad_()
    loss = mlm_loss(logits, labels)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert logits.grad is not None and (logits.grad == 0).all()


def test_mlm_loss_is_the_mean_cross_entropy_over_selected_positions():
    ids, attn = caption_batch(b=8)
    _, labels = mask_tokens(ids, attn, MASK_ID, VOCAB, SPECIALS, prob=0.5, generator=torch.Generator().manual_seed(0))
    logits = randn(8, ids.shape[1], VOCAB, seed=10)
    sel = labels != -100
    want = torch.stack([-(logits[sel][k].log_softmax(-1)[labels[sel][k]]) for k in range(int(sel.sum()))]).mean()
    assert mlm_loss(logits, labels).item() == pytest.approx(want.item(), rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_mask_tokens_and_block_mask_on_cuda():
    ids, attn = caption_batch(b=8)
    g = torch.Generator(device="cuda").manual_seed(0)
    inp, labels = mask_tokens(ids.cuda(), attn.cuda(), MASK_ID, VOCAB, SPECIALS, generator=g)
    assert inp.is_cuda and labels.is_cuda
    assert torch.equal(inp.cpu()[labels.cpu() == -100], ids[labels.cpu() == -100])
    m = block_mask(4, 14, generator=torch.Generator(device="cuda").manual_seed(0), device="cuda")
    assert m.is_cuda and (m.sum(1) == 78).all()


# --- block_mask ----------------------------------------------------------------------------------


def masked_neighbour_pairs(mask, grid):
    m = mask.view(-1, grid, grid)
    return (m[:, 1:, :] & m[:, :-1, :]).sum((1, 2)) + (m[:, :, 1:] & m[:, :, :-1]).sum((1, 2))


@pytest.mark.parametrize("grid, ratio", [(14, 0.4), (8, 0.4), (14, 75 / 196), (6, 0.9), (5, 0.0), (4, 1.0)])
def test_block_mask_masks_exactly_round_ratio_per_sample(grid, ratio):
    m = block_mask(32, grid, ratio, generator=torch.Generator().manual_seed(0))
    assert m.shape == (32, grid * grid) and m.dtype == torch.bool
    assert (m.sum(1) == round(ratio * grid * grid)).all()


def test_block_mask_forms_blocks_not_scattered_patches():
    grid = 14
    m = block_mask(200, grid, 0.4, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    scattered = torch.zeros_like(m)
    for row in scattered:
        row[torch.randperm(grid * grid, generator=g)[:78]] = True
    blocks, singles = masked_neighbour_pairs(m, grid).double().mean(), masked_neighbour_pairs(scattered, grid).double()
    assert blocks > 1.8 * singles.mean(), (blocks, singles.mean())
    assert m.any(0).all()  # every position gets masked sometimes (BEiT's rectangles favour the centre)


def test_block_mask_is_seeded_and_varies_across_samples():
    a = block_mask(8, 14, generator=torch.Generator().manual_seed(3))
    b = block_mask(8, 14, generator=torch.Generator().manual_seed(3))
    c = block_mask(8, 14, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(r.tolist()) for r in a}) == 8


# --- FeatureQueue --------------------------------------------------------------------------------


def onehots(*idx, dim=6):
    return F.one_hot(torch.tensor(idx), dim).float()


def test_queue_fifo_order_and_wrap_around():
    q = FeatureQueue(4, 6)
    assert len(q) == 0 and q.filled == 0 and bool(q)
    q.push(onehots(0, 1))
    assert q.filled == 2 and int(q.ptr) == 2
    q.push(onehots(2, 3, 4))  # wraps: slot 0 now holds row 4
    assert q.filled == 4 and len(q) == 4 and int(q.ptr) == 1
    torch.testing.assert_close(q.features, onehots(4, 1, 2, 3))
    q.push(onehots(5))
    torch.testing.assert_close(q.features, onehots(4, 5, 2, 3))


def test_queue_stores_normalised_detached_rows():
    q = FeatureQueue(3, 4)
    x = randn(2, 4, seed=11).float().requires_grad_()
    q.push(3 * x)
    torch.testing.assert_close(q.features[:2], F.normalize(x.detach(), dim=-1))
    assert not q.features.requires_grad


def test_queue_oversized_push_keeps_the_newest_rows():
    q = FeatureQueue(3, 6)
    q.push(onehots(0))
    q.push(onehots(1, 2, 3, 4, 5))
    assert q.filled == 3 and int(q.ptr) == 1
    stored = {int(r.argmax()) for r in q.features}
    assert stored == {3, 4, 5}
    q.push(onehots(0))  # the oldest of the three (3) goes first
    assert {int(r.argmax()) for r in q.features} == {0, 4, 5}


def test_queue_nearest_uses_filled_slots_only():
    q = FeatureQueue(8, 3)
    with pytest.raises(RuntimeError, match="empty queue"):
        q.nearest(torch.ones(1, 3))
    stored = torch.tensor([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    q.push(stored)
    # every stored row has a negative cosine with the queries; the six zero slots (cosine 0) must not win
    got = q.nearest(torch.tensor([[0.1, 1.0, 1.0], [1.0, 0.1, 1.0], [1.0, 0.1, 1.0]]))
    torch.testing.assert_close(got, stored[[0, 1, 1]])


def test_queue_nearest_matches_a_brute_force_reference():
    q = FeatureQueue(16, 5)
    stored = randn(11, 5, seed=12).float()
    q.push(stored)
    queries = randn(7, 5, seed=13).float()
    sims = F.normalize(queries, dim=-1) @ F.normalize(stored, dim=-1).T
    torch.testing.assert_close(q.nearest(queries), F.normalize(stored, dim=-1)[sims.argmax(1)])


def test_queue_dtype_argument():
    q = FeatureQueue(4, 3, dtype=torch.float16)
    q.push(randn(2, 3, seed=14))
    assert q.features.dtype == torch.float16
    assert q.nearest(randn(1, 3, seed=15).float()).dtype == torch.float16


@pytest.mark.parametrize("pushes", [[3], [5, 4], [2, 9]])  # partly filled, wrapped, wrapped by an oversized push
def test_queue_state_dict_round_trip_restores_contents_pointer_and_fill(pushes):
    class Owner(nn.Module):
        def __init__(self):
            super().__init__()
            self.queue = FeatureQueue(6, 4)

    src = Owner()
    for k, n in enumerate(pushes):
        src.queue.push(randn(n, 4, seed=20 + k))
    state = src.state_dict()
    assert {"queue.features", "queue.ptr", "queue.count"} <= set(state)
    dst = Owner()
    dst.load_state_dict(state)
    assert torch.equal(dst.queue.features, src.queue.features)
    assert int(dst.queue.ptr) == int(src.queue.ptr) and dst.queue.filled == src.queue.filled == len(dst.queue)
    assert dst.queue.filled == min(sum(pushes), 6)
    new = randn(2, 4, seed=30)
    src.queue.push(new)
    dst.queue.push(new)
    assert torch.equal(dst.queue.features, src.queue.features)
    query = randn(3, 4, seed=31).float()
    assert torch.equal(dst.queue.nearest(query), src.queue.nearest(query))


# --- flava_contrastive (one process; the multi-worker cases are in test_training_gather.py) ----


def test_flava_contrastive_single_process_equals_clip_loss_and_clamps_its_scale():
    cls = OBJECTIVES.get("flava_contrastive")
    obj = cls(cls.Options())
    assert obj.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    img, txt = F.normalize(randn(8, 16, seed=40), dim=-1), F.normalize(randn(8, 16, seed=41), dim=-1)
    for mode in ("global", "local"):
        got = cls(cls.Options(mode=mode)).double()({"image_features": img, "text_features": txt}, {})
        assert got.item() == pytest.approx(clip_loss(img, txt, torch.tensor(1 / 0.07)).item(), rel=1e-6)
    with torch.no_grad():
        obj.log_scale.fill_(math.log(500.0))
    assert obj.logit_scale().item() == pytest.approx(100.0)
    with torch.no_grad():
        obj.log_scale.fill_(-2.0)
    assert obj.logit_scale().item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        flava_contrastive_loss(img, txt, torch.tensor(1.0), mode="both")
    with pytest.raises(ValueError):
        cls.Options(mode="both")
