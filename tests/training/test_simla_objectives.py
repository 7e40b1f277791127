"""SIMLA's four objectives on the tiny single-stream model: configs, each loss against a reference
computed by hand, the momentum model and queues in the trainee, learning on a fixed batch, and
two gloo workers drawing ITM hard negatives from the whole global batch."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from pydantic import ValidationError

from pipelines.webserver import free_port
from training import tokenizer
from training.config import TrainConfig
from training.objectives import psl_targets
from training.objectives.functional import IGNORE_INDEX, block_mask, distilled_cross_entropy, mask_tokens
from training.objectives.simla_itm import SimlaItm, SimlaItmOptions
from training.optim import build_optimizer
from training.trainee import build_trainee
from training.visual_tokenizer import learn_kmeans, patch_vectors

CAPTIONS = [
    "a red circle on the left",
    "two small blue squares",
    "a green triangle at the top of the picture",
    "the yellow star",
    "a purple circle and a red square",
    "one big orange triangle",
]
B = len(CAPTIONS)
ALL = ("simla_itc", "simla_itm", "simla_xmm", "simla_psl")


def small_codebook(seed=0):
    g = torch.Generator().manual_seed(seed)
    patches = patch_vectors(torch.randn(16, 3, 64, 64, generator=g), 8).reshape(-1, 192)
    return learn_kmeans(patches, codes=16, iters=3, seed=seed)


def simla_config(objectives=ALL, **model):
    specs = {n: {"weight": 1.0} for n in objectives}
    if "simla_itc" in specs:
        specs["simla_itc"]["options"] = {"queue_size": 10}
    return TrainConfig(
        dataset="x@1",
        objectives=specs,
        model={"family": "single_stream", "preset": "tiny", "momentum": {"alpha_ramp_steps": 10}} | model,
    )


def trainee_for(objectives=ALL, **model):
    torch.manual_seed(0)
    return build_trainee(simla_config(objectives, **model), visual_tokenizer=small_codebook())


def pair_batch(seed=0, captions=CAPTIONS):
    ids, mask = tokenizer.tokenize(captions)
    g = torch.Generator().manual_seed(seed)
    return {
        "modality": "pair",
        "image": torch.randn(len(captions), 3, 64, 64, generator=g),
        "text": ids,
        "text_mask": mask,
    }


# --- configs ---------------------------------------------------------------------------------


def test_objectives_and_model_family_must_match():
    with pytest.raises(ValidationError, match="objective 'simla_itm' trains a single_stream model"):
        TrainConfig(dataset="x@1", objectives={"simla_itm": {}})
    with pytest.raises(ValidationError, match="objective 'clip' trains a dual_encoder model"):
        TrainConfig(dataset="x@1", objectives={"clip": {}, "simla_itm": {}}, model={"family": "single_stream"})
    with pytest.raises(ValidationError, match="min_temperature <= init_temperature"):
        TrainConfig(
            dataset="x@1",
            objectives={"simla_itc": {"options": {"init_temperature": 0.9}}},
            model={"family": "single_stream"},
        )


def test_the_shipped_simla_config_is_equation_10():
    from catalog.config import load_config

    cfg = load_config(TrainConfig, "configs/train/simla.yaml")
    assert cfg.model.family == "single_stream"
    assert {n: s.weight for n, s in cfg.objectives.items()} == dict.fromkeys(ALL, 1.0)
    assert cfg.objective_options("simla_itc").queue_size < 1627  # smaller than the demo version it trains on
    assert (
        TrainConfig.model_validate({**cfg.to_dict(), "objectives": {"simla_itc": {}}})
        .objective_options("simla_itc")
        .queue_size
        == 65536
    )  # the paper's M is the objective's default
    assert cfg.model.momentum.decay == 0.995 and cfg.model.momentum.alpha == 0.4


# --- the trainee: momentum model, alpha, queues ----------------------------------------------


def test_momentum_model_is_outside_autograd_and_the_optimizer_and_follows_in_place():
    t = trainee_for()
    assert t.momentum is not None and not any(p.requires_grad for p in t.momentum.parameters())
    optimizer = build_optimizer({"trainee": t}, simla_config().optim, 1e-2)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in t.momentum.parameters()}
    pointers = [p.data_ptr() for p in t.momentum.parameters()]
    t.train()
    t.set_step(0)
    total, losses = t(pair_batch())
    total.backward()
    optimizer.step()
    before = {n: p.detach().clone() for n, p in t.momentum.named_parameters()}
    online = dict(t.model.named_parameters())
    t.set_step(1)
    t(pair_batch(1))
    for name, p in t.momentum.named_parameters():  # ema <- 0.995 ema + 0.005 model, before the forward
        torch.testing.assert_close(p, 0.995 * before[name] + 0.005 * online[name].detach(), rtol=1e-6, atol=1e-7)
    assert [p.data_ptr() for p in t.momentum.parameters()] == pointers  # updated in place
    assert any(not torch.equal(p, before[n]) for n, p in t.momentum.named_parameters())
    assert "momentum.visual.proj" in t.state_dict()


def test_alpha_follows_the_step_and_its_ramp():
    t = trainee_for()
    assert [(t.set_step(s), t.alpha())[1] for s in (0, 5, 10, 50)] == pytest.approx([0.0, 0.2, 0.4, 0.4])
    torch.manual_seed(0)
    cfg = simla_config(momentum={"alpha_ramp_steps": None})
    epoch = build_trainee(cfg, visual_tokenizer=small_codebook())
    epoch.set_step(25, steps_per_epoch=100)  # None: one epoch
    assert epoch.alpha() == pytest.approx(0.1)


def test_itc_queue_takes_batches_that_do_not_divide_it_and_holds_the_newest_momentum_features():
    t = trainee_for(("simla_itc",))
    itc = t.objectives["simla_itc"]
    t.train()
    pushed = []
    for step, rows in enumerate((4, 4, 3)):  # 11 rows into a queue of 10: the pointer wraps at 1
        t.set_step(step)
        batch = pair_batch(step, CAPTIONS[:rows])
        outputs = t.encode(batch, ["simla_itc"])
        pushed.append(outputs["momentum"]["image_features"].detach())
        itc(outputs, batch, t.model)
    assert itc.image_queue.filled == 10 and int(itc.image_queue.ptr) == 1
    rows = torch.cat(pushed)
    expected = torch.cat([rows[10:], rows[1:10]])  # slot 0 was overwritten by the 11th row
    torch.testing.assert_close(itc.image_queue.features, F.normalize(expected, dim=-1))


def test_itc_is_the_distilled_infonce_against_momentum_batch_and_queue():
    t = trainee_for(("simla_itc",))
    itc = t.objectives["simla_itc"]
    t.train()
    t.set_step(0)
    itc(t.encode(pair_batch(0), ["simla_itc"]), pair_batch(0), t.model)  # fill 6 of the 10 slots
    t.set_step(7)  # alpha 0.28
    batch = pair_batch(1)
    outputs = t.encode(batch, ["simla_itc"])
    queue_i, queue_t = itc.image_queue.rows().clone(), itc.text_queue.rows().clone()
    got = itc(outputs, batch, t.model)
    m, alpha, scale = outputs["momentum"], outputs["alpha"], itc.logit_scale().detach()
    img, txt = outputs["image_features"].detach(), outputs["text_features"].detach()
    text_bank = torch.cat([m["text_features"], queue_t])
    image_bank = torch.cat([m["image_features"], queue_i])
    eye = torch.eye(B, text_bank.shape[0])

    def h(logits, momentum_logits):
        target = (1 - alpha) * eye + alpha * momentum_logits.softmax(1)
        return -(logits.log_softmax(1) * target).sum(1).mean()

    expected = (
        h(scale * img @ text_bank.T, scale * m["image_features"] @ text_bank.T)
        + h(scale * txt @ image_bank.T, scale * m["text_features"] @ image_bank.T)
    ) / 2
    assert alpha == pytest.approx(0.28)
    torch.testing.assert_close(got.detach(), expected, rtol=1e-5, atol=1e-6)
    # alpha 0 is plain InfoNCE
    logits = torch.randn(4, 9)
    torch.testing.assert_close(
        distilled_cross_entropy(logits, torch.arange(4), torch.randn(4, 9), 0.0),
        F.cross_entropy(logits, torch.arange(4)),
    )
    empty = torch.zeros(0, 9, requires_grad=True)  # no row (no masked token): 0, not NaN, and connected
    assert distilled_cross_entropy(empty, torch.zeros(0, dtype=torch.long)).requires_grad


def test_itc_temperature_is_clamped_to_its_range():
    t = trainee_for(("simla_itc",))
    itc = t.objectives["simla_itc"]
    with torch.no_grad():
        itc.log_scale.fill_(10.0)  # 1/T = 22026
    assert float(itc.logit_scale().detach()) == pytest.approx(1000.0)
    with torch.no_grad():
        itc.log_scale.fill_(-3.0)
    assert float(itc.logit_scale().detach()) == pytest.approx(2.0)


def test_itm_trains_positive_and_both_hard_negatives_and_survives_degenerate_batches():
    t = trainee_for(("simla_itm",))
    t.train()
    seen = []
    t.model.itm_head.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    total, losses = t(pair_batch())
    assert seen == [3 * B] and torch.isfinite(total)
    total.backward()
    assert t.model.itm_head.weight.grad.abs().sum() > 0 and t.model.visual.conv1.weight.grad.abs().sum() > 0
    # identical pairs (all similarities equal), a batch of two, features with inf: valid negatives
    same = pair_batch(captions=["a red circle"] * 2)
    same["image"][1] = same["image"][0]
    assert torch.isfinite(t(same)[0])
    itm = t.objectives["simla_itm"]
    outputs = t.encode(pair_batch(), ["simla_itm"])
    outputs["image_features"] = torch.full_like(outputs["image_features"], float("inf"))
    assert torch.isfinite(itm(outputs, pair_batch(), t.model))


def encoded_for(name: str, step: int):
    """A trainee of objective `name` alone at `step` (α = 0.04 · step), in training mode, with a
    batch and its encoded outputs: (objective, model, batch, outputs)."""
    t = trainee_for((name,))
    t.train()
    t.set_step(step)
    batch = pair_batch()
    return t.objectives[name], t.model, batch, t.encode(batch, [name])


def test_xmm_is_distilled_mlm_plus_mim_with_targets_of_the_crop_the_vit_sees():
    xmm, model, batch, outputs = encoded_for("simla_xmm", 5)  # alpha 0.2
    torch.manual_seed(123)
    got = xmm(outputs, batch, model)
    # the same draws by hand: the BERT masks first, then the BEiT block mask
    torch.manual_seed(123)
    info, alpha, teacher, m = xmm.info, outputs["alpha"], outputs["momentum"]["model"], outputs["momentum"]
    ids, mask = batch["text"], batch["text_mask"]
    masked, labels = mask_tokens(ids, mask, info.mask_id, info.vocab_size, info.special_ids, 0.15)
    chosen = labels != IGNORE_INDEX
    patches = block_mask(B, info.grid, ratio=0.4, min_block=4)

    def mixed(logits, target, teacher_logits):
        soft = teacher_logits.softmax(-1)
        return (1 - alpha) * F.cross_entropy(logits, target) + alpha * -(logits.log_softmax(-1) * soft).sum(-1).mean()

    with torch.no_grad():
        mlm = mixed(
            model.mlm_head(model.fuse(masked, mask, outputs["image_tokens"])["states"][chosen]),
            labels[chosen],
            teacher.mlm_head(teacher.fuse(masked, mask, m["image_tokens"])["states"][chosen]),
        )
        targets = xmm.tokenizer(batch["image"], info.grid)  # the very tensor the ViT sees
        student = model.fuse_image(
            model.masked_image_pass(batch["image"], patches, model.mim_mask_token), outputs["text_states"], mask
        )
        teacher_states = teacher.fuse_image(
            teacher.masked_image_pass(batch["image"], patches, teacher.mim_mask_token), m["text_states"], mask
        )
        mim = mixed(
            model.mim_head(student[:, 1:][patches]),
            targets[patches],
            teacher.mim_head(teacher_states[:, 1:][patches]),
        )
    assert chosen.any() and patches.sum() == B * round(0.4 * info.grid**2)
    torch.testing.assert_close(got.detach(), mlm + mim, rtol=1e-5, atol=1e-6)


def test_psl_targets_come_from_the_momentum_cls_attention_without_stop_words():
    psl, model, batch, outputs = encoded_for("simla_psl", 3)  # alpha 0.12
    got = psl(outputs, batch, model)
    m, alpha, teacher = outputs["momentum"], outputs["alpha"], outputs["momentum"]["model"]
    ids, mask = batch["text"], batch["text_mask"]
    with torch.no_grad():
        attention = teacher.fuse(m["text_states"], mask, m["image_tokens"], return_attention=True)["cls_attention"]
        stop = set(tokenizer.stop_ids())
        excluded = {0, tokenizer.tokenizer().sot_token_id, tokenizer.eot_id(), tokenizer.mask_id(), *stop}
        hard = psl_targets(attention, ids, mask, 4, tokenizer.vocab_size(), excluded)
        target = (1 - alpha) * hard + alpha * teacher.psl_logits(m["image_tokens"]).sigmoid()
        expected = F.binary_cross_entropy_with_logits(model.psl_logits(outputs["image_tokens"]), target)
    torch.testing.assert_close(got.detach(), expected)
    labels = [set(torch.nonzero(row).flatten().tolist()) for row in hard]
    encoder = tokenizer.tokenizer().encoder
    assert labels[3] == {encoder["yellow</w>"], encoder["star</w>"]}  # "the yellow star": fewer than k left
    assert labels[0] == {encoder[w + "</w>"] for w in ("red", "circle", "left")}  # "a", "on", "the" skipped
    assert len(labels[2]) == 4  # "a green triangle at the top of the picture": 4 of its 4 content words
    assert not set().union(*labels) & (stop | {tokenizer.eot_id(), tokenizer.tokenizer().sot_token_id})
    the = tokenizer.tokenizer().encoder["the</w>"]
    assert the in stop and the in ids[3]  # "the yellow star": "the" is never a concept


def test_all_four_losses_fall_on_a_fixed_batch():
    t = trainee_for()
    optimizer = build_optimizer({"trainee": t}, simla_config().optim, 2e-3)
    batch = pair_batch()
    t.train()
    history = []
    for step in range(40):
        t.set_step(step)
        total, losses = t(batch)
        total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append({n: float(v.detach()) for n, v in losses.items()})
    assert set(history[0]) == set(ALL)
    for name in ALL:
        first, last = history[0][name], sum(h[name] for h in history[-5:]) / 5
        assert all(torch.isfinite(torch.tensor(h[name])) for h in history), name
        assert last < first, (name, first, last)


# --- two gloo workers: global-batch hard negatives ---------------------------------------------

G = 6  # global batch; 3 rows per worker


def itm_inputs():
    """A tiny single-stream model, a batch, and features whose hardest negative of row i is row
    (i + 3) mod 6, always on the other worker: similarity 14.3 against <= 0.72 for every other
    row (at τ = 0.07), so any other draw has probability < 3e-6."""
    torch.manual_seed(0)
    trainee = build_trainee(simla_config(("simla_itm",)))
    batch = pair_batch()
    basis = torch.eye(8)[:G]
    image_f = basis
    text_f = basis[[(i + 3) % G for i in range(G)]]  # text j is image (j + 3)'s direction
    text_f = F.normalize(text_f + 0.05 * basis, dim=-1)  # ... and a little of its own
    return trainee.model, batch, image_f, text_f


def itm_loss_and_grads(model, batch, image_f, text_f, rows: slice):
    outputs = model(batch["image"][rows], batch["text"][rows], batch["text_mask"][rows])
    outputs["image_features"], outputs["text_features"] = image_f[rows], text_f[rows]
    itm = SimlaItm(SimlaItmOptions())
    part = {k: v[rows] for k, v in batch.items() if torch.is_tensor(v)}
    model.zero_grad(set_to_none=True)
    loss = itm(outputs, part, model)
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def itm_worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)
    model, batch, image_f, text_f = itm_inputs()
    rows = slice(rank * G // world, (rank + 1) * G // world)
    loss, grads = itm_loss_and_grads(model, batch, image_f, text_f, rows)
    dist.all_reduce(loss)
    dist.all_reduce(grads)  # what data-parallel averaging does
    torch.save((loss / world, grads / world), os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes in a gloo group
def test_two_gloo_workers_draw_itm_negatives_from_the_global_batch(tmp_path):
    mp.spawn(itm_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    model, batch, image_f, text_f = itm_inputs()
    loss, grads = itm_loss_and_grads(model, batch, image_f, text_f, slice(0, G))  # one process, whole batch
    # a worker that drew from its own 3 rows only would see other negatives: another loss
    local = [itm_loss_and_grads(*itm_inputs(), slice(r * 3, r * 3 + 3))[0] for r in range(2)]
    assert abs(sum(local) / 2 - loss) > 1e-4
    for rank in range(2):
        got_loss, got_grads = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got_loss, loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_grads, grads, rtol=1e-4, atol=1e-6)
