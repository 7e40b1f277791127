"""DeCLIP's four supervisions and a FLAVA mixture through the real CLI and Ray Train (tiny
model, CPU), and a killed mixture run that resumes exactly where an uninterrupted one is.

Data: the shapes corpus (support.training_corpus) with its views, plus an image-only and a
text-only version of other shapes; the visual tokenizer is built by the real
`python -m training tokenizer build` over the image-only version.
"""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from support.cluster import BIN, REPO, cluster_state, descendants, processes_under, run_script
from support.raytrain import (
    ENV,
    assert_own_lines_only,
    flat_state,
    kill_a_worker_when,
    metrics,
    registered,
    train,
    training_cli,
)
from support.training_corpus import write_unimodal, write_version

DECLIP = """dataset: shapes@latest
root: ./data
batch_size: 32
model: {preset: tiny}
objectives:
  clip: {weight: 0.4}
  declip_ss_image: {weight: 0.2}
  declip_mlm: {weight: 0.2}
  declip_mvs: {weight: 0.2, options: {texts: [text, eda0.txt]}}
  declip_nns: {weight: 0.2, options: {queue_size: 512}}
data: {num_workers: 1, image_from: g0.jpg}
optim: {lr: 0.002, weight_decay: 0.05}
schedule: {warmup_steps: 10}
checkpoint: {storage: ./ckpt, every_steps: 1000}
run: {log_every: 10, log_dir: ./logs}
"""

FLAVA = """root: ./data
batch_size: 32
model: {preset: tiny}
objectives:
  flava_contrastive: {weight: 1.0}
  flava_mim: {weight: 1.0}
  flava_mlm: {weight: 1.0}
data:
  mixture: {shapes@latest: 0.70, images@latest: 0.15, texts@latest: 0.15}
  num_workers: 1
optim: {lr: 0.002, weight_decay: 0.05}
schedule: {warmup_steps: 10}
checkpoint: {storage: ./ckpt, every_steps: 1000}
run: {log_every: 1, log_dir: ./logs}
"""

RESUME = """root: ./data
batch_size: 16
model: {preset: tiny}
objectives:
  clip: {weight: 1.0}
  declip_nns: {weight: 0.5, options: {queue_size: 96, images: [image]}}
  flava_mim: {weight: 1.0}
  flava_mlm: {weight: 1.0}
data:
  mixture: {shapes@1: 0.6, images@1: 0.2, texts@1: 0.2}
  num_workers: 1
checkpoint: {storage: ./ckpt, every_steps: 20, keep: 3}
run: {log_every: 1, log_dir: ./logs, max_failures: 1}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    write_version(d / "data", "shapes", n=640, seed=1, per_shard=160, views=True)
    write_unimodal(d / "data", "images", "image", n=320, seed=2, per_shard=160)
    write_unimodal(d / "data", "texts", "text", n=320, seed=3, per_shard=160)
    for name, text in (("declip.yaml", DECLIP), ("flava.yaml", FLAVA), ("resume.yaml", RESUME)):
        (d / name).write_text(text)
    training_cli(d, "tokenizer", "build", "images@1", "--codes", "64", "--root", "data")
    return d


def summary(workdir, name):
    return json.loads((workdir / "logs" / name / "summary.json").read_text())


def early_late(rows, key, n=30):
    values = [r[key] for r in rows if key in r]
    assert len(values) >= 2 * n // 3, f"{key}: only {len(values)} logged values"
    k = max(1, len(values) // 4)
    return sum(values[:k]) / k, sum(values[-k:]) / k, values


def test_declip_all_four_supervisions_learn(workdir):
    out = train(workdir, "declip.yaml", "steps=200", "run.name=declip")
    rows = metrics(workdir, "declip")
    s = summary(workdir, "declip")
    assert s["step"] == 200
    for name in ("clip", "declip_ss_image", "declip_mlm", "declip_mvs", "declip_nns"):
        first, last, values = early_late(rows, f"loss/{name}", n=15)
        assert all(v == v and abs(v) < 1e6 for v in values), name  # finite
        print(name, round(first, 3), "->", round(last, 3))
        if name != "declip_nns":  # NNS is 0 while its queue fills
            assert last < first, name
    nns = [r["loss/declip_nns"] for r in rows]
    assert nns[0] == 0.0 and nns[-1] > 0.0  # off until the queue holds a global batch, then on
    assert rows[-1]["queue_filled/declip_nns"] == 512
    ratio = [r["collapse_ratio/declip_ss_image"] for r in rows]
    assert min(ratio) > 0.05  # logged every log step; not collapsed here
    assert "collapse_ratio/declip_ss_image" in s
    assert {"weight/declip_mlm", "time_ms/declip_mlm", "time_ms/encode"} <= set(rows[-1])
    assert "declip_ss_image=" in out and "ms/step=" in out  # per-objective loss on the progress line
    state = torch.load(Path(s["checkpoint"]) / "state.pt", weights_only=False)
    queue = {k: v for k, v in state["objectives"].items() if k.startswith("declip_nns.queue")}
    assert queue and any(v.numel() >= 512 for v in queue.values())


def test_flava_mixture_learns_each_objective_on_its_own_batches(workdir):
    train(workdir, "flava.yaml", "steps=200", "run.name=flava")
    rows = metrics(workdir, "flava")
    s = summary(workdir, "flava")
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).update(k for k in r if k.startswith("loss/") and k != "loss/total")
    assert by_source == {
        "shapes@1": {"loss/flava_contrastive"},
        "images@1": {"loss/flava_mim"},
        "texts@1": {"loss/flava_mlm"},
    }
    for name in ("flava_contrastive", "flava_mim", "flava_mlm"):
        first, last, _ = early_late(rows, f"loss/{name}", n=15)
        print(name, round(first, 3), "->", round(last, 3))
        assert last < first, name
    seen = s["samples_per_source"]
    assert sum(seen.values()) == 200 * 32
    assert seen["shapes@1"] / (200 * 32) == pytest.approx(0.70, abs=0.08)
    assert seen["images@1"] > 0 and seen["texts@1"] > 0


def last_per_step(rows):
    return {r["step"]: r for r in rows}


@pytest.fixture(scope="module")
def straight_state(workdir):
    """The uninterrupted run both kill tests are compared with."""
    train(workdir, "resume.yaml", "steps=50", "run.name=straight")
    return torch.load(workdir / "ckpt" / "straight" / "checkpoint-00000050" / "state.pt", weights_only=False)


def test_killed_mixture_run_resumes_with_queue_sampler_and_batches_of_an_uninterrupted_run(workdir, straight_state):
    # the killed run's Ray Train controller polls its workers every 5 s, not 2 (a busy cluster):
    # a loop that went on before its checkpoint was registered would resume from step 0
    slow_poll = dict(ENV, RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="5")
    proc = train(workdir, "resume.yaml", "steps=50", "run.name=killed", wait=False, env=slow_poll)
    checkpoint = workdir / "ckpt" / "killed" / "checkpoint-00000020"
    seen: dict[str, bool] = {}

    def ready() -> bool:
        steps = [r["step"] for r in metrics(workdir, "killed")]
        if max(steps, default=0) > 20 and "step 21" not in seen:
            seen["step 21"] = registered(checkpoint)  # step 21 runs only once step 20's is registered
        return max(steps, default=0) >= 22

    out = kill_a_worker_when(proc, ready, "step 22")
    assert seen == {"step 21": True}
    assert_own_lines_only(out, workdir, "killed")  # a worker's death and the restart stay in ray.log
    assert summary(workdir, "killed")["steps_this_attempt"] == 30  # resumed from the step-20 checkpoint
    killed, straight = metrics(workdir, "killed"), last_per_step(metrics(workdir, "straight"))
    assert [r["step"] for r in killed].count(22) == 2  # steps after the checkpoint ran twice
    resumed = last_per_step(killed)
    # the resumed steps draw the same sources and batches and give the same losses
    for step in range(21, 51):
        a, b = resumed[step], straight[step]
        assert a["source"] == b["source"], step
        for key in (k for k in b if k.startswith("loss/")):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (step, key)
    # what the step-20 checkpoint saved is what a run restarted from it holds
    saved = torch.load(checkpoint / "state.pt", weights_only=False)
    assert saved["data"]["sampler"] == {"seed": 0, "step": 20} and sum(saved["data"]["positions"].values()) == 20
    assert saved["objectives"]["declip_nns.queue.count"].item() > 0
    final_killed = torch.load(workdir / "ckpt" / "killed" / "checkpoint-00000050" / "state.pt", weights_only=False)
    final_straight = straight_state
    assert final_killed["data"] == final_straight["data"]
    for part in ("model", "optimizer"):  # the same state, batches and RNG draws: bit for bit
        assert torch.equal(flat_state(final_killed[part]), flat_state(final_straight[part])), part
    for key, value in final_straight["objectives"].items():
        if key.startswith(("declip_nns.queue", "flava_mim.tokenizer")):
            assert torch.equal(final_killed["objectives"][key], value), key


def _node_of(pid: int, state: str) -> str:
    """The cluster node (head, worker1, ...) whose `ray start` process `pid` runs under."""
    nodes = {p.stem: int(p.read_text()) for p in (Path(state) / "pids").glob("*.pid")}
    return next(name for name, root in nodes.items() if pid in descendants({root}))


def test_a_run_whose_worker_node_dies_resumes_on_another_node_bit_identical(workdir, straight_state):
    """`ray job submit` on a three-node cluster (infra/cluster.sh; the head takes no work): the
    raylet of the node running the Ray Train worker is SIGKILLed after the step-20 checkpoint;
    FailureConfig restarts the group on the other node, which resumes from step 20 and ends
    with the uninterrupted run's model, optimiser and data state, bit for bit."""
    with cluster_state(head_cpus=0) as env:
        up = run_script(env, "up", timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        state, env = env["LIPFORGE_CLUSTER_DIR"], {**env, "RAY_AUTH_MODE": "token"}
        dashboard = f"http://127.0.0.1:{env['LIPFORGE_CLUSTER_DASHBOARD_PORT']}"
        where = {"root": workdir / "data", "checkpoint.storage": workdir / "ckpt", "run.log_dir": workdir / "logs"}
        sets = [a for k, v in where.items() for a in ("--set", f"{k}={v}")]  # the job runs in a copy of the repo
        cmd = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--"]
        cmd += ["python", "-m", "training", "train", str(workdir / "resume.yaml"), "--set", "steps=50"]
        cmd += ["--set", "run.name=node", *sets]
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        checkpoint = workdir / "ckpt" / "node" / "checkpoint-00000020"
        killed: list[str] = []

        def ready() -> bool:
            return any(r["step"] >= 22 for r in metrics(workdir, "node")) and registered(checkpoint)

        def kill_the_node(pid: int) -> None:
            node = _node_of(pid, state)
            killed.append(node)
            raylets = [p for p, c in processes_under(f"{state}/ray/{node}/").items() if "/raylet " in f"{c} "]
            os.kill(raylets[0], signal.SIGKILL)

        out = kill_a_worker_when(proc, ready, "step 22 and the step-20 checkpoint", kill=kill_the_node)
    assert killed and killed[0].startswith("worker"), killed
    assert "succeeded" in out, out[-3000:]
    assert summary(workdir, "node")["steps_this_attempt"] == 30  # resumed from the step-20 checkpoint
    final = torch.load(workdir / "ckpt" / "node" / "checkpoint-00000050" / "state.pt", weights_only=False)
    assert final["data"] == straight_state["data"]
    for part in ("model", "optimizer"):
        assert torch.equal(flat_state(final[part]), flat_state(straight_state[part])), part
