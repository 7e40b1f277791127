"""DeCLIP and FLAVA objectives inside the trainee: what each reads, how often the towers run,
the defects of the public code they avoid (causal MLM, unlogged SimSiam collapse,
un-checkpointed NNS queue, misaligned MIM targets), and modality gating."""

import math

import pytest
import torch
import torch.nn.functional as F

from training import tokenizer
from training.config import TrainConfig
from training.objectives import OBJECTIVES, clip_loss
from training.objectives.declip_ss_image import collapse_std
from training.trainee import build_trainee, model_info
from training.visual_tokenizer import learn_kmeans, patch_vectors

B = 8
DECLIP = {
    "clip": {"weight": 0.4},
    "declip_ss_image": {"weight": 0.2},
    "declip_mlm": {"weight": 0.2},
    "declip_mvs": {"weight": 0.2},
    "declip_nns": {"weight": 0.2, "options": {"queue_size": 32}},
}


def pair_batch(seed=0, b=B):
    g = torch.Generator().manual_seed(seed)
    words = ["red", "blue", "circle", "square", "left", "right", "top", "small"]
    caps = [" ".join(words[(i + k) % 8] for k in range(3 + i % 4)) for i in range(b)]
    ids, mask = tokenizer.tokenize(caps)
    eda, eda_mask = tokenizer.tokenize([c.split(" ", 1)[1] for c in caps])
    return {
        "modality": "pair",
        "image": torch.randn(b, 3, 64, 64, generator=g),
        "g1.jpg": torch.randn(b, 3, 64, 64, generator=g),
        "text": ids,
        "text_mask": mask,
        "eda*.txt": eda,
        "eda*.txt:mask": eda_mask,
    }


def trainee_for(objectives, **data):
    torch.manual_seed(0)
    return build_trainee(TrainConfig(dataset="x@1", objectives=objectives, data=data))


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls


def test_declip_encodes_each_input_once_views_batched_with_the_image():
    t = trainee_for(DECLIP, image_from="g0.jpg")
    vision = count_calls(t.model.visual)
    text = count_calls(t.model.text.transformer)
    total, losses = t(pair_batch())
    assert set(losses) == set(DECLIP) and torch.isfinite(total)
    assert vision == [2 * B]  # image (g0) and g1 in ONE pass; SimSiam, MVS and NNS share it
    assert sorted(text) == [B, 2 * B]  # caption + EDA view together (causal), masked caption alone


def test_mlm_is_bidirectional_and_contrastive_reads_the_clean_caption():
    t = trainee_for({"clip": {"weight": 1.0}, "declip_mlm": {"weight": 1.0, "options": {"prob": 0.5}}})
    batch = pair_batch()
    # the clean caption's feature is what CLIP gets
    outputs = t.encode(batch, ["clip", "declip_mlm"])
    clean, _ = t.model.encode_text(batch["text"])
    assert torch.allclose(outputs["text_features"], clean, atol=1e-6)
    # a masked word's prediction depends on what lies to its RIGHT: with every caption of the
    # same length, the end-of-text position is never masked, so its position embedding gets a
    # gradient only if masked words attend to it (a causal pass could not); padding gets none
    same = dict(batch)
    same["text"], same["text_mask"] = tokenizer.tokenize(["red circle at the left"] * B)
    torch.manual_seed(3)
    loss = t.objectives["declip_mlm"](t.encode(same, ["declip_mlm"]), same, t.model)
    (grad,) = torch.autograd.grad(loss, t.model.text.positional_embedding)
    eot = int(same["text_mask"][0].sum()) - 1
    assert grad[eot].abs().sum() > 0
    assert grad[eot + 1 :].abs().sum() == 0


def test_mlm_with_nothing_selected_is_zero_not_nan():
    t = trainee_for({"declip_mlm": {"weight": 1.0, "options": {"prob": 0.0}}})
    batch = pair_batch()
    loss = t.objectives["declip_mlm"](t.encode(batch, ["declip_mlm"]), batch, t.model)
    assert loss.item() == 0.0
    loss.backward()


def test_simsiam_collapse_indicator_healthy_vs_collapsed():
    d = 256
    healthy = collapse_std(torch.randn(512, d))
    collapsed = collapse_std(torch.ones(512, d) + 1e-4 * torch.randn(512, d))
    assert healthy.item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert collapsed.item() < 0.01 / math.sqrt(d)
    t = trainee_for({"declip_ss_image": {"weight": 1.0, "options": {"views": ["image", "g1.jpg"]}}})
    t(pair_batch())
    logged = t.log_metrics()
    assert {"collapse/declip_ss_image", "collapse_ratio/declip_ss_image"} <= set(logged)
    assert 0.3 < logged["collapse_ratio/declip_ss_image"] < 1.5  # a fresh projector is not collapsed


def test_mvs_is_the_mean_of_the_four_pairs():
    t = trainee_for({"declip_mvs": {"weight": 1.0}})
    batch = pair_batch()
    out = t.encode(batch, ["declip_mvs"])
    loss = t.objectives["declip_mvs"](out, batch, t.model)
    f = out["features"]
    scale = t.objectives["declip_mvs"].logit_scale()
    pairs = [clip_loss(f[i], f[j], scale) for i in ("image", "g1.jpg") for j in ("text", "eda*.txt")]
    assert loss.item() == pytest.approx((sum(pairs) / 4).item(), rel=1e-5)


def test_nns_is_zero_until_the_queue_holds_a_batch_then_uses_neighbours():
    t = trainee_for({"declip_nns": {"weight": 1.0, "options": {"queue_size": 20, "images": ["image"]}}})
    nns = t.objectives["declip_nns"]
    first = pair_batch(0)
    out = t.encode(first, ["declip_nns"])
    assert nns(out, first, t.model).item() == 0.0 and len(nns.queue) == B
    second = pair_batch(1)
    out = t.encode(second, ["declip_nns"])
    loss = nns(out, second, t.model)
    neighbours = F.normalize(torch.cat([t.encode(first, ["declip_nns"])["text_features"]]), dim=-1)
    sims = out["text_features"] @ neighbours.T
    nn_rows = neighbours[sims.argmax(1)]
    ref = F.cross_entropy(nns.logit_scale() * out["image_features"] @ nn_rows.T, torch.arange(B))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-4)
    assert len(nns.queue) == 2 * B


def test_nns_queue_and_pointer_travel_in_the_objectives_state_dict():
    t = trainee_for({"declip_nns": {"weight": 1.0, "options": {"queue_size": 12}}})
    for seed in range(3):  # 24 rows into 12 slots: wrapped
        batch = pair_batch(seed)
        t.objectives["declip_nns"](t.encode(batch, ["declip_nns"]), batch, t.model)
    saved = {k: v.clone() for k, v in t.objectives.state_dict().items()}
    fresh = trainee_for({"declip_nns": {"weight": 1.0, "options": {"queue_size": 12}}})
    assert len(fresh.objectives["declip_nns"].queue) == 0
    fresh.objectives.load_state_dict(saved)
    restored = fresh.objectives.state_dict()
    assert all(torch.equal(restored[k], v) for k, v in saved.items())
    query = F.normalize(torch.randn(4, t.model.embed_dim), dim=-1)
    assert torch.equal(
        fresh.objectives["declip_nns"].queue.nearest(query), t.objectives["declip_nns"].queue.nearest(query)
    )


class Recording(torch.nn.Module):
    """A visual tokenizer that remembers the tensor it tokenised (wrapping a real codebook)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.codes, self.seen = inner, inner.codes, []

    def forward(self, images, grid):
        self.seen.append(images.clone())
        return self.inner(images, grid)


def small_codebook(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(16, 3, 64, 64, generator=g)
    return learn_kmeans(patch_vectors(images, 8), codes=16, iters=3, seed=seed)


def mim_trainee(tok):
    cfg = TrainConfig(dataset="x@1", objectives={"flava_mim": {"weight": 1.0}})
    torch.manual_seed(0)
    return build_trainee(cfg, visual_tokenizer=tok)


def test_mim_targets_come_from_the_tensor_the_vit_sees():
    tok = Recording(small_codebook())
    t = mim_trainee(tok)
    batch = {"modality": "image", "image": torch.randn(B, 3, 64, 64)}
    vit_inputs = []
    t.model.visual.conv1.register_forward_hook(lambda m, args, out: vit_inputs.append(args[0]))
    total, losses = t(batch)
    assert set(losses) == {"flava_mim"} and torch.isfinite(total)
    assert len(tok.seen) == 1 and torch.equal(tok.seen[0], vit_inputs[0])
    assert "flava_mim.tokenizer.inner.codebook" in t.objectives.state_dict() or any(
        k.startswith("flava_mim.tokenizer") for k in t.objectives.state_dict()
    )


def test_objectives_run_only_on_their_modality():
    objectives = {
        "flava_contrastive": {"weight": 1.0},
        "flava_mim": {"weight": 1.0},
        "flava_mlm": {"weight": 1.0},
    }
    torch.manual_seed(0)
    t = build_trainee(TrainConfig(dataset="x@1", objectives=objectives), visual_tokenizer=small_codebook())
    pair = pair_batch()
    assert set(t(pair)[1]) == {"flava_contrastive"}
    assert set(t({"modality": "image", "image": pair["image"]})[1]) == {"flava_mim"}
    text_only = {"modality": "text", "text": pair["text"], "text_mask": pair["text_mask"]}
    vision = count_calls(t.model.visual)
    assert set(t(text_only)[1]) == {"flava_mlm"} and vision == []  # no image pass on a text batch


def test_flava_mim_without_a_tokenizer_fails_clearly():
    with pytest.raises(ValueError, match="needs a visual tokenizer"):
        mim_trainee(None)


def test_model_info_reflects_the_preset():
    t = trainee_for({"clip": {"weight": 1.0}})
    info = model_info(t.model, TrainConfig(dataset="x@1"))
    assert (info.vision_width, info.text_width, info.grid, info.mask_id) == (96, 64, 8, tokenizer.mask_id())
    assert OBJECTIVES.get("declip_mlm").modalities == frozenset({"pair"})


def test_trainee_tokens_are_the_models_unit_norm_tokens():
    """FILIP reads L2-normalised tokens; the trainee's one batched pass must hand over exactly
    the model's own `encode_image`/`encode_text` tokens (a wrong normalise axis once made
    FILIP's first loss 5e5 instead of ~ln B)."""
    t = trainee_for({"clip": {"weight": 1.0}, "filip": {"weight": 1.0}})
    t.eval()
    batch = pair_batch()
    out = t.encode(batch, ["clip", "filip"])
    _, image_tokens = t.model.encode_image(batch["image"], tokens=True)
    _, text_tokens = t.model.encode_text(batch["text"], tokens=True)
    assert torch.allclose(out["image_tokens"], image_tokens, atol=1e-5)
    assert torch.allclose(out["text_tokens"], text_tokens, atol=1e-5)
    assert torch.allclose(out["text_tokens"].norm(dim=-1), torch.ones(()), atol=1e-4)
    total, losses = t(batch)
    assert losses["filip"].item() < 2 * math.log(B) + 1
