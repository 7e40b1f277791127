"""SIMLA through the real CLI and Ray Train (tiny single-stream preset, CPU): all four losses
finite and falling over 160 steps, evaluated by ITC + ITM re-ranking with cross-attention
word-patch pictures; and a run whose worker is SIGKILLed after its step-40 checkpoint that
resumes with the model, the momentum model, both queues with their pointers and α of the
uninterrupted run, bit for bit.

Data: the shapes corpus (support.training_corpus); the visual tokenizer is built by the real
`python -m training tokenizer build` over the same version.
"""

import json

import pytest
import torch
from support.raytrain import (
    assert_own_lines_only,
    flat_state,
    kill_a_worker_when,
    metrics,
    registered,
    train,
    training_cli,
)
from support.training_corpus import write_version

pytestmark = pytest.mark.slow

STEPS = 160
LOSSES = ("simla_itc", "simla_itm", "simla_xmm", "simla_psl")

SIMLA = """dataset: shapes@latest
root: ./data
steps: 160
batch_size: 8
model:
  family: single_stream
  preset: tiny
  momentum: {decay: 0.995, alpha: 0.4, alpha_ramp_steps: 10}
objectives:
  simla_itc: {weight: 1.0, options: {queue_size: 100}}   # 100 is no multiple of the batch
  simla_itm: {weight: 1.0}
  simla_xmm: {weight: 1.0, options: {tokenizer: shapes@1}}
  simla_psl: {weight: 1.0}
data: {num_workers: 1}
optim: {lr: 0.002, weight_decay: 0.02}
schedule: {warmup_steps: 10}
checkpoint: {storage: ./ckpt, every_steps: 40, keep: 5}
run: {log_every: 1, log_dir: ./logs, max_failures: 1}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("simla")
    write_version(d / "data", "shapes", n=480, seed=1, per_shard=160)
    (d / "simla.yaml").write_text(SIMLA)
    training_cli(d, "tokenizer", "build", "shapes@1", "--codes", "64", "--root", "data")
    return d


def last_per_step(rows):
    """Each step's logged values (a step logged twice, before and after a restart: the later
    values; the evaluation's row of the last step merged into its training row)."""
    out: dict[int, dict] = {}
    for r in rows:
        out.setdefault(r["step"], {}).update(r)
    return out


def state_of(workdir, name, step):
    return torch.load(workdir / "ckpt" / name / f"checkpoint-{step:08d}" / "state.pt", weights_only=False)


@pytest.fixture(scope="module")
def straight(workdir):
    out = train(workdir, "simla.yaml", "run.name=straight", "eval.sets=[shapes@1]", "eval.max_images=64")
    return out, state_of(workdir, "straight", STEPS)


def test_simla_learns_all_four_losses_and_is_evaluated_with_itm_and_cross_attention(workdir, straight):
    out, state = straight
    rows = last_per_step(metrics(workdir, "straight"))
    assert sorted(rows) == list(range(1, STEPS + 1))
    for name in LOSSES:
        values = [rows[s][f"loss/{name}"] for s in sorted(rows)]
        assert all(torch.isfinite(torch.tensor(values))), name
        # ITC's columns grow with its queue (full from step 13) and its targets soften with alpha
        # (0.4 from step 11): compare from step 15 on, where both are fixed
        start = 14 if name == "simla_itc" else 0
        first, last = sum(values[start : start + 20]) / 20, sum(values[-20:]) / 20
        assert last < first, (name, first, last)
    assert rows[6]["alpha"] == pytest.approx(0.2) and rows[STEPS]["alpha"] == pytest.approx(0.4)
    assert rows[STEPS]["queue_fill/simla_itc"] == 1.0
    summary = json.loads((workdir / "logs" / "straight" / "summary.json").read_text())
    evaluated = summary["eval"]["sets"]["shapes@1"]
    assert "retrieval scorer: itm (top 256 re-scored)" in evaluated["notes"]
    assert {"retrieval/i2t_r1", "retrieval/itc_i2t_r1", "alignment/localisation_acc"} <= set(evaluated["metrics"])
    assert evaluated["files"] and all(f.endswith(".png") for f in evaluated["files"])
    assert state["momentum"] is not None and int(state["objectives"]["simla_itc.image_queue.ptr"]) == STEPS * 8 % 100
    # the eval command rebuilds the single-stream model from the checkpoint alone
    got = training_cli(workdir, "eval", "straight", "--storage", "ckpt", "--set", "eval.max_images=32")
    assert "retrieval scorer: itm (top 256 re-scored)" in got and "retrieval/itc_i2t_r1" in got


def test_a_killed_simla_run_resumes_model_momentum_queues_and_alpha_exactly(workdir, straight):
    _, straight_state = straight
    proc = train(workdir, "simla.yaml", "run.name=killed", wait=False)
    checkpoint = workdir / "ckpt" / "killed" / "checkpoint-00000040"

    def ready() -> bool:
        return max((r["step"] for r in metrics(workdir, "killed")), default=0) >= 42 and registered(checkpoint)

    out = kill_a_worker_when(proc, ready, "step 42 and the step-40 checkpoint")
    assert_own_lines_only(out, workdir, "killed")
    summary = json.loads((workdir / "logs" / "killed" / "summary.json").read_text())
    assert summary["steps_this_attempt"] == STEPS - 40  # resumed from the step-40 checkpoint
    saved = state_of(workdir, "killed", 40)
    assert int(saved["objectives"]["simla_itc.image_queue.count"]) == 100 and saved["momentum"] is not None
    resumed, uninterrupted = last_per_step(metrics(workdir, "killed")), last_per_step(metrics(workdir, "straight"))
    for step in range(41, STEPS + 1):  # the same alpha, batches, draws and losses at every resumed step
        assert resumed[step]["alpha"] == uninterrupted[step]["alpha"], step
        for name in LOSSES:
            assert resumed[step][f"loss/{name}"] == pytest.approx(uninterrupted[step][f"loss/{name}"], rel=1e-6), step
    final = state_of(workdir, "killed", STEPS)
    for part in ("model", "momentum", "objectives", "optimizer"):  # bit for bit
        assert flat_state(final[part]).shape == flat_state(straight_state[part]).shape, part
        assert torch.equal(flat_state(final[part]), flat_state(straight_state[part])), part
    for key in ("simla_itc.image_queue.ptr", "simla_itc.text_queue.ptr", "simla_itc.image_queue.count"):
        assert torch.equal(final["objectives"][key], straight_state["objectives"][key]), key
