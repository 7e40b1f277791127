"""End-to-end Ray Train runs of the tiny model on a generated shapes corpus (CLI, real Ray).

Measured on the 2-core box: CLIP-only tiny model, 150 steps of batch 32 lowers the loss
from ~3.5 to well under half, and image->text R@1 on 200 held-out pairs is several times
chance (see the asserts for the margins). The console carries lipforge's lines only (the
driver's progress bar, the summary, where the log is); Ray's output is in the run's ray.log.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support.raytrain import assert_own_lines_only
from support.training_corpus import write_version

from catalog import models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    write_version(d / "data", "shapes", n=800, seed=1, per_shard=100)
    write_version(d / "data", "heldout", n=200, seed=99, per_shard=200)
    (d / "run.yaml").write_text(
        "dataset: shapes@latest\nroot: ./data\nbatch_size: 32\n"
        "model: {preset: tiny}\nobjectives: {clip: {weight: 1.0}}\n"
        "data: {num_workers: 1, caption_from: [txt, 'bt.*']}\n"
        "optim: {lr: 0.002, weight_decay: 0.05}\nschedule: {warmup_steps: 10}\n"
        "checkpoint: {storage: ./ckpt, keep: 2}\nrun: {log_every: 5, log_dir: ./logs}\n"
        "eval: {sets: [heldout@latest], tasks: {retrieval: {}, zeroshot: {}}}\n"
    )
    return d


def train(workdir, *overrides, wait=True):
    cmd = [sys.executable, "-m", "training", "train", "run.yaml"] + [a for o in overrides for a in ("--set", o)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def summary(workdir, name):
    return json.loads((workdir / "logs" / name / "summary.json").read_text())


def logged_steps(workdir, name):
    path = workdir / "logs" / name / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def test_tiny_clip_learns_and_rerunning_resumes(workdir):
    out = train(workdir, "steps=150", "run.name=learn", "checkpoint.every_steps=75")
    s = summary(workdir, "learn")
    print("first/last loss", s["first_loss"], s["last_loss"], "eval", s["eval"])
    assert s["step"] == 150 and s["steps_this_attempt"] == 150
    assert s["last_loss"] < 0.6 * s["first_loss"]
    held_out = s["eval"]["sets"]["heldout@1"]
    # measured at 150 steps: i2t R@1 0.12 (9x chance), t2i R@1 0.06 (4.5x), colour 0.99 (6x), shape+colour 0.29 (9x)
    margins = {"retrieval/i2t_r1": 5, "retrieval/t2i_r1": 3, "zeroshot/colour/top1": 4, "zeroshot/shape_colour/top1": 5}
    for name, times in margins.items():
        assert held_out["metrics"][name] > times * held_out["chance"][name], name
    # the run and its evaluation are in the catalog, tied to the versions it read
    run = models.load_run(str(workdir / "data"), "learn")
    assert run["status"] == "finished" and run["step"] == 150
    assert run["datasets"]["shapes@1"]["samples_seen"] == 150 * 32
    assert "eval" in run["datasets"]["heldout@1"]["roles"]
    assert [e["step"] for e in run["evals"]] == [150]
    assert run["checkpoints"][-1]["step"] == 150
    assert "loss: start" in out and "train: 100%" in out
    assert_own_lines_only(out, workdir, "learn")
    assert "Started a local Ray instance" in (workdir / "logs" / "learn" / "ray.log").read_text()
    ckpt = Path(s["checkpoint"])
    assert sorted(p.name for p in ckpt.iterdir()) == ["rng-rank0.pt", "state.pt"]
    state = torch.load(ckpt / "state.pt", weights_only=False)
    assert state["step"] == 150 and "clip.log_scale" in state["objectives"]
    assert {"model", "optimizer", "scheduler", "scaler", "data_position"} <= set(state)
    assert list((workdir / "logs" / "learn" / "tensorboard").glob("events.out.tfevents.*"))
    lines = [json.loads(line) for line in (workdir / "logs" / "learn" / "metrics.jsonl").read_text().splitlines()]
    metrics = [m for m in lines if "loss/total" in m][-1]
    assert lines[-1]["step"] == 150 and "eval/heldout@1/retrieval/i2t_r1" in lines[-1]  # the evaluation's line
    assert {"loss/total", "loss/clip", "lr", "temperature/clip", "samples_per_s"} <= set(metrics)

    train(workdir, "steps=160", "run.name=learn", "checkpoint.every_steps=75", "eval.sets=[]")
    s = summary(workdir, "learn")
    assert s["step"] == 160 and s["steps_this_attempt"] == 10

    # evaluating the finished run afterwards: its own eval section, a task added by --set
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "training",
        "eval",
        "learn",
        "--storage",
        "ckpt",
        "--set",
        "eval.tasks.probe={}",
        "--set",
        "eval.sets=[heldout@latest]",
    ]
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "model learn at step 160" in done.stdout and "probe/shape_colour/top1" in done.stdout
    assert re.search(r"retrieval/i2t_r1 +[\d.]+ +\(chance 0\.0\d+", done.stdout)
    run = models.load_run(str(workdir / "data"), "learn")
    assert [e["step"] for e in run["evals"]] == [150, 160]
    assert "probe/shape_colour/top1" in run["evals"][-1]["metrics"]
    bad = subprocess.run([*cmd[:4], "no-such-run"], cwd=workdir, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
