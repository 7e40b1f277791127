"""SIMLA's pure building blocks (training.objectives.simla_functional) against straightforward references."""

import copy
import math

import pytest
import torch
from torch import nn

from training.objectives import distill_alpha, momentum_update, psl_targets, sample_itm_negatives

INF, NAN = float("inf"), float("nan")


def draws(sim, n, seed=0):
    """n calls of the sampler on (sim, sim.T) with one seeded generator: two [n, B] long tensors."""
    gen = torch.Generator().manual_seed(seed)
    pairs = [sample_itm_negatives(sim, sim.T, generator=gen) for _ in range(n)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def assert_valid(idx, b):
    assert idx.dtype == torch.long and idx.shape[-1] == b
    assert ((idx >= 0) & (idx < b)).all()
    assert (idx != torch.arange(b)).all(), "a negative was its own positive"


def off_diagonal_softmax(sim):
    """Reference: softmax of each row over j != i, in float64, row by row."""
    b = sim.shape[0]
    probs = torch.zeros(b, b, dtype=torch.float64)
    for i in range(b):
        others = [j for j in range(b) if j != i]
        probs[i, others] = torch.softmax(sim[i, others].double(), dim=0)
    return probs


def chi_square(counts, probs):
    """Pearson statistic summed over rows, the diagonal (probability 0) left out."""
    n = counts.sum(dim=1, keepdim=True).double()
    expected = n * probs
    keep = probs > 0
    return (((counts.double() - expected) ** 2)[keep] / expected[keep]).sum().item()


def row_counts(idx, b):
    return torch.stack([torch.bincount(idx[:, i], minlength=b) for i in range(b)])


# --- sample_itm_negatives: validity on any input --------------------------------------------------


DEGENERATE = {
    "all equal": torch.full((5, 5), 0.3),
    "all equal, huge": torch.full((5, 5), 1e6),
    "diagonal dominant ±1e6": torch.full((5, 5), -1e6).fill_diagonal_(1e6),
    "±1e6 random": 1e6 * torch.randn(6, 6, generator=torch.Generator().manual_seed(0)),
    "+inf entries": torch.tensor(
        [[0.0, INF, 1.0, INF], [INF, INF, INF, INF], [2.0, 1.0, INF, 0.0], [1.0, 2.0, 3.0, 4.0]]
    ),
    "-inf entries": torch.tensor([[0.0, -INF, -INF, 1.0], [-INF, 0.0, -INF, -INF], [-INF] * 4, [1.0, 2.0, 3.0, -INF]]),
    "nan entries": torch.tensor([[NAN] * 4, [0.0, NAN, NAN, 1.0], [NAN, 2.0, 0.0, NAN], [1.0, NAN, 3.0, 0.0]]),
    "only the diagonal finite": torch.full((4, 4), NAN).fill_diagonal_(5.0),
    "float max": torch.full((4, 4), torch.finfo(torch.float32).max) * torch.tensor([1.0, -1.0, 1.0, -1.0]),
    "fp16": (3 * torch.randn(6, 6, generator=torch.Generator().manual_seed(1))).half(),
    "fp16 with inf": torch.tensor([[7e4, 1.0, -7e4], [1.0, 1.0, 1.0], [NAN, 0.0, 6e4]]).half(),
    "bf16 ±1e6": (1e6 * torch.randn(5, 5, generator=torch.Generator().manual_seed(2))).bfloat16(),
    "fp64": torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3)),
    "B = 2": torch.tensor([[9.0, -INF], [NAN, 1.0]]),
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_itm_negatives_are_never_the_positive_and_always_in_range(name):
    sim = DEGENERATE[name]
    original = sim.clone()
    b = sim.shape[0]
    for seed in range(200):
        for idx in sample_itm_negatives(sim, sim.T, generator=torch.Generator().manual_seed(seed)):
            assert_valid(idx, b)
    assert torch.equal(sim.isnan(), original.isnan()) and torch.equal(sim.nan_to_num(), original.nan_to_num())


def test_itm_negatives_follow_the_limits_of_softmax_on_degenerate_rows():
    sim = DEGENERATE["+inf entries"]
    neg_text, _ = draws(sim, 600)
    assert set(neg_text[:, 0].tolist()) == {1, 3}  # the +inf entries share the mass
    assert set(neg_text[:, 1].tolist()) == {0, 2, 3}  # all +inf: uniform over the others
    assert set(neg_text[:, 2].tolist()) == {0, 1, 3}  # its only +inf is the diagonal: a softmax of the rest
    assert (neg_text[:, 2] == 0).float().mean() > 0.5  # p = e^2 / (e^2 + e + 1) ~ 0.67
    assert set(neg_text[:, 3].tolist()) == {0, 1, 2}

    sim = DEGENERATE["nan entries"]
    neg_text, neg_image = draws(sim, 600)
    assert set(neg_text[:, 0].tolist()) == {1, 2, 3}  # nothing finite: uniform over the others
    assert set(neg_text[:, 1].tolist()) <= {0, 3}  # NaN is never drawn
    assert set(neg_text[:, 3].tolist()) <= {0, 2}

    sim = DEGENERATE["-inf entries"]
    neg_text, _ = draws(sim, 600)
    assert set(neg_text[:, 0].tolist()) == {3}  # -inf weighs nothing
    assert set(neg_text[:, 1].tolist()) == {0, 2, 3}  # nothing finite off the diagonal: uniform
    assert set(neg_text[:, 2].tolist()) == {0, 1, 3}  # all -inf: uniform
    assert set(neg_text[:, 3].tolist()) <= {0, 1, 2}

    sim = DEGENERATE["diagonal dominant ±1e6"]  # equal off-diagonal scores: uniform, not the 0/0 of exp underflow
    neg_text, _ = draws(sim, 300)
    for i in range(5):
        assert set(neg_text[:, i].tolist()) == set(range(5)) - {i}

    sim = DEGENERATE["±1e6 random"]  # gaps of ~1e6 in logits: the largest off-diagonal score always wins
    neg_text, neg_image = draws(sim, 100)
    sim = sim.clone().fill_diagonal_(-INF)
    expected_text = sim.argmax(dim=1)
    expected_image = sim.T.argmax(dim=1)
    assert (neg_text == expected_text).all() and (neg_image == expected_image).all()


def test_itm_negatives_with_a_batch_of_two_are_the_other_item():
    sim = torch.tensor([[5.0, -3.0], [-3.0, 5.0]])
    neg_text, neg_image = draws(sim, 50)
    assert (neg_text == torch.tensor([1, 0])).all() and (neg_image == torch.tensor([1, 0])).all()


def test_itm_negatives_match_softmax_over_the_other_items():
    gen = torch.Generator().manual_seed(7)
    sim = 1.5 * torch.randn(5, 5, generator=gen, dtype=torch.float64)  # peaked but every p >= ~1%
    sim[0, 3] = 4.0
    n = 4000
    neg_text, neg_image = draws(sim.float(), n, seed=11)
    p_text, p_image = off_diagonal_softmax(sim), off_diagonal_softmax(sim.T)
    assert p_text[p_text > 0].min() * n > 5  # the chi-square approximation holds
    counts_text, counts_image = row_counts(neg_text, 5), row_counts(neg_image, 5)
    assert (counts_text.diagonal() == 0).all() and (counts_image.diagonal() == 0).all()
    stat = chi_square(counts_text, p_text) + chi_square(counts_image, p_image)
    # 2 matrices × 5 rows × 3 degrees of freedom = 30; P(chi2_30 > 70) ~ 5e-5
    assert stat < 70, stat
    # the test has power: a uniform-over-others sampler (ALBEF with the softmax forgotten) fails it
    uniform = (1 - torch.eye(5, dtype=torch.float64)) / 4
    assert chi_square(counts_text, uniform) + chi_square(counts_image, uniform) > 500
    assert (counts_text.double() / n - p_text).abs().max() < 0.03


def test_itm_negatives_use_each_direction_from_its_own_matrix():
    sim_i2t = torch.full((3, 3), -INF)
    sim_i2t[0, 2] = sim_i2t[1, 0] = sim_i2t[2, 1] = 0.0
    sim_t2i = torch.full((3, 3), -INF)
    sim_t2i[0, 1] = sim_t2i[1, 2] = sim_t2i[2, 0] = 0.0
    neg_text, neg_image = sample_itm_negatives(sim_i2t, sim_t2i)
    assert neg_text.tolist() == [2, 0, 1] and neg_image.tolist() == [1, 2, 0]


def test_itm_negatives_are_reproducible_with_a_seeded_generator():
    sim = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    a = sample_itm_negatives(sim, sim.T, generator=torch.Generator().manual_seed(5))
    b = sample_itm_negatives(sim, sim.T, generator=torch.Generator().manual_seed(5))
    c = sample_itm_negatives(sim, sim.T, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))


@pytest.mark.parametrize("shape", [(1, 1), (0, 0)])
def test_itm_negatives_need_a_batch_of_two(shape):
    with pytest.raises(ValueError, match="at least 2"):
        sample_itm_negatives(torch.zeros(shape), torch.zeros(shape))


def test_itm_negatives_reject_non_square_or_mismatched_inputs():
    with pytest.raises(ValueError, match="square"):
        sample_itm_negatives(torch.zeros(3, 4), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="square"):
        sample_itm_negatives(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        sample_itm_negatives(torch.zeros(3, 3), torch.zeros(4, 4))


def test_itm_negatives_are_pure_tensor_ops_without_host_syncs():
    # meta tensors hold no data: an .item(), .tolist() or `if tensor:` (a host sync on GPU) raises on them
    sim = torch.empty(256, 256, device="meta")
    neg_text, neg_image = sample_itm_negatives(sim, sim.T)
    assert neg_text.shape == neg_image.shape == (256,) and neg_text.dtype == torch.long


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_itm_negatives_on_cuda_do_not_sync():
    sim = torch.randn(128, 128, device="cuda")
    sim[3] = NAN
    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        neg_text, neg_image = sample_itm_negatives(sim, sim.T, generator=gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert neg_text.device.type == "cuda"
    assert_valid(neg_text.cpu(), 128)
    assert_valid(neg_image.cpu(), 128)


# --- psl_targets -------------------------------------------------------------------------------


PAD, CLS, SEP, MASK, STOP, VOCAB = 0, 1, 2, 3, 4, 20
SPECIALS = (PAD, CLS, SEP, MASK)


def psl_reference(att, ids, mask, k, vocab_size, special_ids):
    out = torch.zeros(att.shape[0], vocab_size)
    for b in range(att.shape[0]):
        eligible = [p for p in range(att.shape[1]) if mask[b, p] and int(ids[b, p]) not in set(special_ids)]
        for p in sorted(eligible, key=lambda p: -float(att[b, p]))[:k]:
            out[b, int(ids[b, p])] = 1.0
    return out


def test_psl_targets_on_a_hand_built_attention_map():
    ids = torch.tensor(
        [
            [CLS, 5, 6, 5, 7, SEP, PAD, PAD],  # 5 twice among the top 3: one label
            [CLS, 8, SEP, 8, 9, PAD, PAD, PAD],  # one eligible token; a padded 8 must not erase its label
            [CLS, SEP, PAD, PAD, PAD, PAD, PAD, PAD],  # none eligible
            [CLS, 10, STOP, 11, MASK, 12, SEP, PAD],  # a stop word and [MASK] are excluded when listed
        ]
    )
    mask = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 0],
        ]
    )
    att = torch.tensor(
        [
            [0.9, 0.30, 0.05, 0.25, 0.10, 0.80, 0.95, 0.90],
            [0.5, 0.01, 0.40, 0.30, 0.90, 0.00, 0.00, 0.00],
            [0.6, 0.40, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00],
            [0.1, 0.05, 0.50, 0.02, 0.60, 0.01, 0.30, 0.90],
        ]
    )
    got = psl_targets(att, ids, mask, k=3, vocab_size=VOCAB, special_ids=[*SPECIALS, STOP])
    assert got.shape == (4, VOCAB) and got.dtype == torch.float32
    labels = [set(torch.nonzero(row).flatten().tolist()) for row in got]
    assert labels == [{5, 7}, {8}, set(), {10, 11, 12}]
    assert set(got.unique().tolist()) <= {0.0, 1.0}
    # without the stop word in special_ids it outranks 11 and 12
    got = psl_targets(att, ids, mask, k=2, vocab_size=VOCAB, special_ids=SPECIALS)
    assert set(torch.nonzero(got[3]).flatten().tolist()) == {STOP, 10}
    assert torch.equal(got, psl_reference(att, ids, mask, 2, VOCAB, SPECIALS))


def test_psl_targets_match_a_loop_reference_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    b, length = 16, 12
    ids = torch.randint(0, VOCAB, (b, length), generator=gen)
    lengths = torch.randint(0, length + 1, (b,), generator=gen)
    mask = (torch.arange(length) < lengths[:, None]).long()
    att = torch.rand(b, length, generator=gen).softmax(dim=1)  # distinct values: no ties
    for k in (0, 1, 4, length + 3):
        want = psl_reference(att, ids, mask, k, VOCAB, SPECIALS)
        assert torch.equal(psl_targets(att, ids, mask, k, VOCAB, SPECIALS), want)
        assert torch.equal(psl_targets(att, ids, mask.bool(), k, VOCAB, iter(SPECIALS)), want)  # any iterable
    assert (psl_targets(att, ids, mask, 4, VOCAB, SPECIALS).sum(dim=1) <= 4).all()


def test_psl_targets_rank_nan_attention_last_but_above_ineligible_positions():
    ids = torch.tensor([[CLS, 5, 6, 7, PAD]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    att = torch.tensor([[0.9, NAN, 0.2, 0.1, 0.9]])
    assert torch.nonzero(psl_targets(att, ids, mask, 2, VOCAB, SPECIALS)[0]).flatten().tolist() == [6, 7]
    assert torch.nonzero(psl_targets(att, ids, mask, 3, VOCAB, SPECIALS)[0]).flatten().tolist() == [5, 6, 7]


def test_psl_targets_reject_mismatched_shapes_and_negative_k():
    ids = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        psl_targets(torch.zeros(2, 4), ids, torch.ones(2, 5), 2, VOCAB, SPECIALS)
    with pytest.raises(ValueError, match="non-negative"):
        psl_targets(torch.zeros(2, 5), ids, torch.ones(2, 5), -1, VOCAB, SPECIALS)


# --- momentum_update -----------------------------------------------------------------------------


def small_net(hidden=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 2)).double()


def test_momentum_update_is_the_ema_formula_in_place_without_autograd():
    model = small_net()
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.train()(torch.randn(8, 3, dtype=torch.float64)).sum().backward()  # moves BN stats and the counter
    m = 0.995
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    target = model.state_dict()
    ptrs = {k: v.data_ptr() for k, v in ema.state_dict().items()}

    momentum_update(model, ema, m)

    after = ema.state_dict()
    for key, value in after.items():
        assert value.data_ptr() == ptrs[key], f"{key} was replaced, not updated in place"
        if value.is_floating_point():
            want = m * before[key] + (1 - m) * target[key]
            assert torch.allclose(value, want, rtol=1e-13, atol=1e-15), key
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, target[key]), key  # num_batches_tracked is copied
    for p in ema.parameters():
        assert p.grad_fn is None and p.is_leaf and not p.requires_grad


def test_momentum_update_records_nothing_for_autograd_when_both_require_grad():
    model, ema = small_net(), small_net()
    momentum_update(model, ema, 0.9)
    for p in ema.parameters():
        assert p.requires_grad and p.is_leaf and p.grad_fn is None
    ema[0].weight.sum().backward()
    assert all(p.grad is None for p in model.parameters())


def test_momentum_update_at_the_ends_keeps_or_copies():
    model = small_net()
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(3.0)
    kept = [p.clone() for p in ema.parameters()]
    momentum_update(model, ema, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), kept))
    momentum_update(model, ema, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters()))


def test_momentum_update_rejects_mismatched_models_and_bad_momentum():
    model = small_net()
    with pytest.raises(ValueError, match="mismatch"):
        momentum_update(model, small_net(hidden=5), 0.9)
    with pytest.raises(ValueError, match="parameters"):
        momentum_update(model, nn.Sequential(*model[:2]).double(), 0.9)
    renamed = nn.Sequential()
    renamed.add_module("a", nn.Linear(3, 4))
    renamed.add_module("b", nn.BatchNorm1d(4))
    renamed.add_module("c", nn.Linear(4, 2))
    with pytest.raises(ValueError, match="mismatch"):
        momentum_update(model, renamed.double(), 0.9)
    no_stats = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match="buffers"):
        momentum_update(model, no_stats, 0.9)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="momentum"):
            momentum_update(model, copy.deepcopy(model), bad)


# --- distill_alpha -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "ramp", "want"),
    [(0, 1000, 0.0), (250, 1000, 0.1), (500, 1000, 0.2), (1000, 1000, 0.4), (5000, 1000, 0.4), (-3, 1000, 0.0)],
)
def test_distill_alpha_ramps_linearly_then_holds(step, ramp, want):
    got = distill_alpha(step, ramp, 0.4)
    assert isinstance(got, float) and math.isclose(got, want, abs_tol=1e-12)


@pytest.mark.parametrize("ramp", [0, -5])
def test_distill_alpha_without_a_ramp_is_the_maximum(ramp):
    assert distill_alpha(0, ramp, 0.4) == 0.4 and distill_alpha(10, ramp, 0.4) == 0.4
