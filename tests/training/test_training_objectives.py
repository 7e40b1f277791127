"""CLIP and FILIP objectives against open_clip and a dense, loop-based reference."""

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from training.objectives import OBJECTIVES, clip_loss, filip_loss
from training.objectives.filip import late_interaction


def normed(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def padding_mask(lengths, n):
    return torch.arange(n)[None] < torch.tensor(lengths)[:, None]


def test_clip_loss_equals_open_clip_clip_loss():
    img, txt = normed(16, 32, seed=0).float(), normed(16, 32, seed=1).float()
    for scale in (1.0, 1 / 0.07, 100.0):
        s = torch.tensor(scale)
        assert clip_loss(img, txt, s).item() == pytest.approx(ClipLoss()(img, txt, s).item(), rel=1e-6)


def test_clip_objective_temperature_starts_at_1_over_0_07_and_clamps_at_100():
    obj = OBJECTIVES.get("clip")(OBJECTIVES.get("clip").Options())
    assert obj.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        obj.log_scale.fill_(math.log(500.0))
    assert obj.logit_scale().item() == pytest.approx(100.0)


def dense_filip(img, txt, img_mask, txt_mask, scale, fraction=1.0):
    """Straightforward per-pair FILIP (Eq. 3-5 and Eq. 1), loops and explicit selection."""
    B = img.shape[0]

    def select(tokens, mask, others, others_mask):
        kept = []
        for b in range(B):
            real = [k for k in range(tokens.shape[1]) if mask[b, k]]
            others_real = torch.cat([others[j][others_mask[j]] for j in range(B)])
            score = {k: (tokens[b, k] @ others_real.T).max().item() for k in real}
            keep = math.ceil(round(fraction * len(real), 6))
            kept.append(sorted(real, key=lambda k: -score[k])[:keep])
        return kept

    img_idx = [
        list(range(img.shape[1])) if img_mask is None else [k for k in range(img.shape[1]) if img_mask[b, k]]
        for b in range(B)
    ]
    txt_idx = [[k for k in range(txt.shape[1]) if txt_mask[b, k]] for b in range(B)]
    if fraction < 1.0:
        full_img_mask = torch.ones(img.shape[:2], dtype=torch.bool) if img_mask is None else img_mask
        img_idx = select(img, full_img_mask, txt, txt_mask)
        txt_idx = select(txt, txt_mask, img, full_img_mask)
    s_i2t = torch.zeros(B, B, dtype=img.dtype)
    s_t2i = torch.zeros(B, B, dtype=img.dtype)
    for i in range(B):
        for j in range(B):
            im, tx = img[i, img_idx[i]], txt[j, txt_idx[j]]
            sim = im @ tx.T
            s_i2t[i, j] = sim.max(dim=1).values.mean()
            s_t2i[j, i] = sim.max(dim=0).values.mean()
    labels = torch.arange(B)
    return (F.cross_entropy(scale * s_i2t, labels) + F.cross_entropy(scale * s_t2i, labels)) / 2


@pytest.mark.parametrize("fraction", [1.0, 0.25, 0.5])
def test_filip_loss_equals_dense_reference_with_padding(fraction):
    B, n1, n2, d = 6, 9, 7, 8
    img, txt = normed(B, n1, d, seed=2), normed(B, n2, d, seed=3)
    txt_mask = padding_mask([7, 3, 5, 2, 6, 4], n2)
    img_mask = padding_mask([9, 9, 5, 8, 9, 6], n1)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    for im in (None, img_mask):
        got = filip_loss(img, txt, txt_mask, scale, image_mask=im, token_fraction=fraction)
        want = dense_filip(img, txt, im, txt_mask, scale, fraction)
        assert got.item() == pytest.approx(want.item(), rel=1e-9)


def test_padded_tokens_do_not_change_the_loss():
    B, n1, n2, d = 4, 5, 6, 8
    img, txt = normed(B, n1, d, seed=4), normed(B, n2, d, seed=5)
    mask = padding_mask([6, 2, 4, 3], n2)
    scale = torch.tensor(10.0, dtype=torch.float64)
    garbage = txt.clone()
    garbage[~mask] = normed(int((~mask).sum()), d, seed=6)
    for fraction in (1.0, 0.25):
        a = filip_loss(img, txt, mask, scale, token_fraction=fraction)
        b = filip_loss(img, garbage, mask, scale, token_fraction=fraction)
        assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_chunked_and_dense_paths_agree_in_value_and_gradient():
    B, n1, n2, d = 10, 8, 6, 16
    img, txt = normed(B, n1, d, seed=7), normed(B, n2, d, seed=8)
    mask = padding_mask([6, 1, 3, 5, 2, 6, 4, 4, 3, 6], n2)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    results = []
    for chunk in (1 << 30, B * n1 * n2 // B, 1):  # one block, one row per chunk, minimum
        a, b = img.clone().requires_grad_(), txt.clone().requires_grad_()
        loss = filip_loss(a, b, mask, scale, token_fraction=0.5, chunk_elements=chunk)
        loss.backward()
        results.append((loss.detach(), a.grad, b.grad))
    for other in results[1:]:
        for x, y in zip(results[0], other):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_late_interaction_directions_match_pairwise_definition():
    img, txt = normed(3, 4, 5, seed=9), normed(2, 3, 5, seed=10)
    im, tm = padding_mask([4, 2, 3], 4), padding_mask([3, 1], 3)
    fwd, bwd = late_interaction(img, im, txt, tm, both=True)
    for i in range(3):
        for j in range(2):
            sim = img[i, im[i]] @ txt[j, tm[j]].T
            assert fwd[i, j].item() == pytest.approx(sim.max(1).values.mean().item(), rel=1e-12)
            assert bwd[i, j].item() == pytest.approx(sim.max(0).values.mean().item(), rel=1e-12)


def test_reduced_precision_similarities_stay_close_to_fp32():
    img, txt = normed(8, 16, 32, seed=11).float(), normed(8, 12, 32, seed=12).float()
    mask = padding_mask([12, 5, 7, 9, 3, 12, 6, 8], 12)
    scale = torch.tensor(1 / 0.07)
    ref = filip_loss(img, txt, mask, scale, token_fraction=0.25)
    low = filip_loss(img, txt, mask, scale, token_fraction=0.25, similarity_dtype=torch.bfloat16)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(ref.item(), rel=0.05)


def test_token_fraction_out_of_range_is_rejected():
    img, txt = normed(2, 3, 4, seed=13), normed(2, 3, 4, seed=14)
    with pytest.raises(ValueError, match="token_fraction must be in"):
        filip_loss(img, txt, torch.ones(2, 3, dtype=torch.bool), torch.tensor(1.0), token_fraction=0.0)
