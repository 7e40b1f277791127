"""SIMLA's single-stream model (training.single_stream): shapes, the unimodal/multimodal split,
padding exactness, the [CLS] attention PSL reads, gradients, the momentum copy and the presets."""

import copy

import pytest
import torch

from training import tokenizer
from training.objectives import momentum_update, psl_targets
from training.single_stream import SingleStream, build_single_stream, load_preset

CAPTIONS = ["a red circle on the left", "two small dogs", "a blue square at the top right of the picture", "cat"]
B = len(CAPTIONS)
MODES = pytest.mark.parametrize("shared", [False, True], ids=["split", "shared"])


def make(shared=False, **kwargs):
    preset = load_preset("tiny")
    if shared:  # SIMLA's code: every block has cross-attention, the text encoder skips it
        preset["text"].update(shared=True, cross_layers=preset["text"]["layers"])
    torch.manual_seed(0)
    return SingleStream(preset, **kwargs).eval()


@pytest.fixture(scope="module")
def batch():
    ids, mask = tokenizer.tokenize(CAPTIONS)
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, 3, 64, 64, generator=g), ids, mask


@pytest.fixture(scope="module")
def split_model():
    return make()


@pytest.fixture(scope="module")
def shared_model():
    return make(shared=True)


@pytest.fixture
def model(request, split_model, shared_model):
    return shared_model if request.node.callspec.params["shared"] else split_model


def text_input(model, out, ids):
    """What `fuse` takes: the unimodal states when they can be reused, else the ids."""
    return ids if model.text.shared else out["text_states"]


@MODES
@torch.no_grad()
def test_shapes(model, batch, shared):
    images, ids, mask = batch
    n, L, wv, w, e = model.grid**2 + 1, ids.shape[1], model.vision_width, model.text_width, model.embed_dim
    out = model(images, ids, mask)
    assert out["image_features"].shape == out["text_features"].shape == (B, e)
    assert out["image_tokens"].shape == (B, n, wv)
    assert out["text_states"].shape == (B, L, w)
    fused = model.fuse(text_input(model, out, ids), mask, out["image_tokens"], return_attention=True)
    assert fused["states"].shape == (B, L, w) and fused["cls"].shape == (B, w)
    assert fused["cls_attention"].shape == (B, L)
    assert fused["cross_attention"].shape == (B, L, n)
    heads = model.text.heads
    multimodal = model.text.unimodal_layers if not shared else 0
    assert len(fused["self_attentions"]) == len(model.text.blocks) - multimodal
    assert all(a.shape == (B, heads, L, L) for a in fused["self_attentions"])
    assert all(a.shape == (B, heads, L, n) for a in fused["cross_attentions"])
    assert model.itm_head(fused["cls"]).shape == (B, 2)
    assert model.mlm_head(fused["states"]).shape == (B, L, model.vocab_size) == (B, L, 49410)
    image_states = model.fuse_image(out["image_tokens"], out["text_states"], mask)
    assert image_states.shape == (B, n, w)
    assert model.mim_head(image_states[:, 1:]).shape == (B, n - 1, model.codebook_size)
    assert model.psl_logits(out["image_tokens"]).shape == (B, model.vocab_size)


def test_codebook_size_is_configurable():
    assert make(codebook_size=512).mim_head.out_features == 512


@MODES
@torch.no_grad()
def test_features_are_l2_normalised(model, batch, shared):
    out = model(*batch)
    for key in ("image_features", "text_features"):
        torch.testing.assert_close(out[key].norm(dim=-1), torch.ones(B))


@MODES
@torch.no_grad()
def test_text_feature_ignores_the_image_multimodal_cls_does_not(model, batch, shared):
    images, ids, mask = batch
    other = torch.randn_like(images)
    a, b = model(images, ids, mask), model(other, ids, mask)
    assert torch.equal(a["text_features"], b["text_features"]) and torch.equal(a["text_states"], b["text_states"])
    assert not torch.allclose(a["image_features"], b["image_features"])
    cls_a = model.fuse(text_input(model, a, ids), mask, a["image_tokens"])["cls"]
    cls_b = model.fuse(text_input(model, b, ids), mask, b["image_tokens"])["cls"]
    assert (cls_a - cls_b).abs().amax(dim=-1).min() > 1e-4, "the multimodal [CLS] did not see the image"


@MODES
@torch.no_grad()
def test_padding_beyond_eot_changes_no_real_output(model, batch, shared):
    images, ids, mask = batch
    short = int(mask.sum(1).max())
    g = torch.Generator().manual_seed(1)
    garbage = torch.where(mask, ids, torch.randint(0, 49405, ids.shape, generator=g))  # not zeros: any padding id
    runs = []
    for text, m in ((ids[:, :short], mask[:, :short]), (ids, mask), (garbage, mask)):
        out = model(images, text, m)
        fused = model.fuse(text_input(model, out, text), m, out["image_tokens"], return_attention=True)
        image_states = model.fuse_image(out["image_tokens"], out["text_states"], m)
        runs.append((out, fused, image_states))
    real = mask[:, :short]
    (out0, fused0, img0) = runs[0]
    for out, fused, img in runs[1:]:
        torch.testing.assert_close(out["text_features"], out0["text_features"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out["text_states"][:, :short][real], out0["text_states"][real], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(fused["states"][:, :short][real], fused0["states"][real], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(fused["cls_attention"][:, :short], fused0["cls_attention"], atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(fused["cross_attention"][:, :short][real], fused0["cross_attention"][real])
        torch.testing.assert_close(img, img0, atol=1e-5, rtol=1e-4)


@MODES
@torch.no_grad()
def test_cls_attention_is_a_distribution_over_real_positions(model, batch, shared):
    images, ids, mask = batch
    out = model(images, ids, mask)
    image_mask = torch.ones(out["image_tokens"].shape[:2], dtype=torch.bool)
    image_mask[:, -5:] = False
    fused = model.fuse(text_input(model, out, ids), mask, out["image_tokens"], image_mask, return_attention=True)
    att = fused["cls_attention"]
    torch.testing.assert_close(att.sum(dim=1), torch.ones(B))
    assert (att[~mask] == 0).all() and (att[mask] > 0).all()
    torch.testing.assert_close(att, fused["self_attentions"][-1][:, :, 0].mean(dim=1))
    cross = fused["cross_attention"]
    torch.testing.assert_close(cross.sum(dim=-1), torch.ones(B, ids.shape[1]))
    assert (cross[..., -5:] == 0).all()
    # what PSL makes of it: at most k labels a caption, all of them ids of that caption, no specials
    specials = (0, ids[0, 0].item(), tokenizer.eot_id(), tokenizer.mask_id())
    targets = psl_targets(att, ids, mask, k=4, vocab_size=model.vocab_size, special_ids=specials)
    for row, caption, real in zip(targets, ids, mask):
        labels = set(row.nonzero().flatten().tolist())
        assert 1 <= len(labels) <= 4 and labels <= set(caption[real].tolist()) - set(specials)


@MODES
@torch.no_grad()
def test_attention_maps_do_not_change_the_outputs(model, batch, shared):
    images, ids, mask = batch
    out = model(images, ids, mask)
    plain = model.fuse(text_input(model, out, ids), mask, out["image_tokens"])
    mapped = model.fuse(text_input(model, out, ids), mask, out["image_tokens"], return_attention=True)
    torch.testing.assert_close(plain["states"], mapped["states"], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_fusion_continues_from_the_unimodal_states(split_model, batch):
    images, ids, mask = batch
    model = split_model
    out = model(images, ids, mask)
    calls = []
    hooks = [
        b.register_forward_hook(lambda *_: calls.append(1)) for b in model.text.blocks[: model.text.unimodal_layers]
    ]
    try:
        from_states = model.fuse(out["text_states"], mask, out["image_tokens"], return_attention=True)
        assert not calls, "fuse reran the text-encoder blocks although it was given their output"
        from_ids = model.fuse(ids, mask, out["image_tokens"], return_attention=True)
        assert len(calls) == model.text.unimodal_layers
    finally:
        for h in hooks:
            h.remove()
    for key in ("states", "cls_attention", "cross_attention"):
        torch.testing.assert_close(from_states[key], from_ids[key])
    # image-as-query fusion: states or ids give the same thing too
    torch.testing.assert_close(
        model.fuse_image(out["image_tokens"], out["text_states"], mask),
        model.fuse_image(out["image_tokens"], ids, mask),
    )


@torch.no_grad()
def test_shared_mode_fuses_from_ids_only(shared_model, batch):
    images, ids, mask = batch
    out = shared_model(images, ids, mask)
    with pytest.raises(ValueError, match="token ids"):
        shared_model.fuse(out["text_states"], mask, out["image_tokens"])
    # the text encoder is every block with cross-attention skipped: the multimodal pass differs
    unimodal = shared_model.text.ln_fusion(shared_model.text.unimodal(ids, mask))
    assert not torch.allclose(unimodal, shared_model.fuse(ids, mask, out["image_tokens"])["states"])


@torch.no_grad()
def test_image_mask_equals_dropping_those_tokens(split_model, batch):
    images, ids, mask = batch
    out = split_model(images, ids, mask)
    tokens = out["image_tokens"]
    image_mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
    image_mask[:, -7:] = False
    masked = split_model.fuse(out["text_states"], mask, tokens, image_mask)["states"]
    dropped = split_model.fuse(out["text_states"], mask, tokens[:, :-7])["states"]
    torch.testing.assert_close(masked, dropped, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_masked_image_pass(split_model, batch):
    images = batch[0]
    grid2 = split_model.grid**2
    token = torch.randn(split_model.vision_width)
    none = torch.zeros(B, grid2, dtype=torch.bool)
    torch.testing.assert_close(split_model.masked_image_pass(images, none, token), split_model.encode_image(images)[1])
    some = none.clone()
    some[:, :10] = True
    masked = split_model.masked_image_pass(images, some, token)
    assert masked.shape == (B, grid2 + 1, split_model.vision_width)
    # every masked image is the same at masked patch 0's input; replace the image under the mask: no change
    other = images.clone()
    other[..., :8, :] = torch.randn_like(other[..., :8, :])  # the first grid row = patches 0..7, all masked
    torch.testing.assert_close(split_model.masked_image_pass(other, some, token), masked)


def test_flip_patch_dropout_only_while_training_and_enabled(batch):
    model = make(mask_ratio=0.5).train()
    n = model.grid**2
    assert model.encode_image(batch[0])[1].shape[1] == 1 + n // 2
    model.set_masking(False)
    assert model.encode_image(batch[0])[1].shape[1] == 1 + n
    model.set_masking(True)
    model.eval()
    assert model.encode_image(batch[0])[1].shape[1] == 1 + n


@MODES
def test_a_combined_loss_reaches_every_parameter(batch, shared):
    images, ids, mask = batch
    model = make(shared=shared).train()
    out = model(images, ids, mask)
    itc = (out["image_features"] @ out["text_features"].T).logsumexp(dim=1).mean()
    fused = model.fuse(text_input(model, out, ids), mask, out["image_tokens"], return_attention=True)
    itm = model.itm_head(fused["cls"]).logsumexp(dim=1).mean()
    mlm = model.mlm_head(fused["states"][mask]).logsumexp(dim=-1).mean()
    patch_mask = torch.rand(B, model.grid**2, generator=torch.Generator().manual_seed(0)) < 0.4
    masked = model.masked_image_pass(images, patch_mask, model.mim_mask_token)
    mim = model.mim_head(model.fuse_image(masked, out["text_states"], mask)[:, 1:][patch_mask]).logsumexp(-1).mean()
    psl = torch.nn.functional.binary_cross_entropy_with_logits(
        model.psl_logits(out["image_tokens"]), torch.zeros(B, model.vocab_size)
    )
    (itc + itm + mlm + mim + psl).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reached {dead}"


def test_deepcopy_and_momentum_update(batch):
    model = make()
    ema = copy.deepcopy(model).requires_grad_(False)
    assert ema.mlm_head.decoder.weight is ema.text.token_embedding.weight, "the copy lost the MLM weight tying"
    assert ema.text.token_embedding.weight is not model.text.token_embedding.weight
    assert [n for n, _ in ema.named_parameters()] == [n for n, _ in model.named_parameters()]
    before = {n: p.clone() for n, p in ema.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    momentum_update(model, ema, 0.25)
    for name, p in ema.named_parameters():
        torch.testing.assert_close(p, before[name] + 0.75, msg=name)
    assert ema.mlm_head.decoder.weight is ema.text.token_embedding.weight
    with torch.no_grad():
        out = ema(*batch)
        fused = ema.fuse(out["text_states"], batch[2], out["image_tokens"], return_attention=True)
    assert torch.isfinite(fused["states"]).all() and torch.isfinite(fused["cls_attention"]).all()
    fresh = make()
    fresh.load_state_dict(ema.state_dict())  # tied weights round-trip through a checkpoint
    assert fresh.mlm_head.decoder.weight is fresh.text.token_embedding.weight
    torch.testing.assert_close(fresh.text.token_embedding.weight, ema.text.token_embedding.weight)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="no such preset") as err:
        load_preset("ViT-H-99")
    assert "base" in str(err.value) and "tiny" in str(err.value)


def test_split_mode_needs_a_text_encoder_below_the_fusion_blocks():
    preset = load_preset("tiny")
    preset["text"]["cross_layers"] = preset["text"]["layers"]
    with pytest.raises(ValueError, match="cross_layers must be < layers"):
        SingleStream(preset)


def test_base_preset_builds_vit_b16_plus_a_bert_base_text_stack():
    model = build_single_stream("base")
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.visual.parameters())
    text = sum(p.numel() for p in model.text.parameters())
    summary = f"total {total / 1e6:.1f}M, vision {vision / 1e6:.1f}M, text {text / 1e6:.1f}M"
    assert 85e6 < vision < 88e6, summary  # ViT-B/16 (86M) + its 768x256 projection
    assert 130e6 < text < 145e6, summary  # 12 BERT-base blocks, 6 cross-attentions, 49,410x768 embedding
    assert 250e6 < total < 290e6, summary  # + PSL (768x49,410), MIM (768x8,192), MLM, ITM, ITC heads
    assert (model.embed_dim, model.text.unimodal_layers, model.image_size) == (256, 6, 224), summary
