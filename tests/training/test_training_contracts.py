"""The objective contract: options checked at config load, declared batch members decoded and
checked against the version's schema before Ray starts, one-line errors without tracebacks."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import torch
from support.training_corpus import write_version

from catalog.cli import run
from catalog.config import ConfigError, load_config
from training import train
from training.__main__ import COMMANDS
from training.config import TrainConfig
from training.data import MissingMembers, ShardStream, make_loader, resolve_shards
from training.objectives import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, mask_key
from training.trainee import build_trainee, run_batch_spec

ROOT = Path(__file__).resolve().parents[2]


class ViewsOptions(ObjectiveOptions):
    init_temperature: float = 0.07


class ReadsViews(Objective):
    """A test objective that reads a global view and an EDA view and records what it got."""

    Options = ViewsOptions
    needs = frozenset({"image_features"})
    batch_members = ("jpg", "txt", "g0.jpg", "eda0.txt")
    seen: dict[str, tuple] = {}

    def __init__(self, options: ViewsOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, 100.0)

    def forward(self, outputs, batch, model):
        type(self).seen = {k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v)}
        view, _ = model.encode_image(batch["g0.jpg"])  # a view goes through the same tower
        return (view * outputs["image_features"]).sum(-1).mean() * self.logit_scale()


@pytest.fixture()
def reads_views():
    OBJECTIVES.register("reads_views")(ReadsViews)
    yield "reads_views"
    OBJECTIVES.unregister("reads_views")


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_objective_option_typo_fails_at_config_load_naming_file_and_key(tmp_path):
    cfg = write_yaml(tmp_path / "run.yaml", "dataset: x@1\nobjectives:\n  clip: {options: {init_temprature: 0.1}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, str(cfg))
    msg = str(info.value)
    assert str(cfg) in msg and "objectives.clip.options.init_temprature" in msg
    assert "allowed options: init_temperature, max_logit_scale" in msg
    with pytest.raises(ConfigError, match=r"objectives.filip.options.token_fraction"):
        load_config(TrainConfig, str(cfg), ["objectives.clip.options={}", "objectives.filip.options.token_fraction=x"])
    assert (
        load_config(
            TrainConfig, str(cfg), ["objectives.clip.options.init_temprature=null", "objectives.clip.options={}"]
        )
        .objective_options("clip")
        .init_temperature
        == 0.07
    )


def test_unknown_objective_lists_the_known_ones(tmp_path):
    cfg = write_yaml(tmp_path / "run.yaml", "dataset: x@1\nobjectives: {clipp: {weight: 1}}\n")
    with pytest.raises(
        ConfigError,
        match=r"key 'objectives.clipp': unknown objective \(known: clip, declip_mlm, [a-z_, ]*filip, flava_contrastive[a-z_, ]*\)",
    ):
        load_config(TrainConfig, str(cfg))


def test_objectives_import_only_torch_stdlib_pydantic_and_each_other():
    allowed = {"torch", "pydantic", "pydantic_core", "training"}
    for path in (ROOT / "training" / "objectives").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed, (path.name, name)
                assert top != "training" or name.startswith("training.objectives"), (path.name, name)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_version(root, "plain", n=16, seed=1, per_shard=8)
    write_version(root, "views", n=16, seed=2, per_shard=8, views=True)
    return root


def test_objective_whose_members_the_version_lacks_fails_before_ray(data, reads_views, tmp_path, capsys):
    cfg = write_yaml(
        tmp_path / "run.yaml",
        f"dataset: plain@latest\nroot: {data}\nobjectives: {{clip: {{}}, reads_views: {{}}}}\n"
        f"run: {{log_dir: {tmp_path / 'logs'}}}\ncheckpoint: {{storage: {tmp_path / 'ckpt'}}}\n",
    )
    with pytest.raises(
        MissingMembers, match=r"dataset plain@1 lacks members: objective 'reads_views' reads g0.jpg, eda0.txt"
    ):
        train.launch(load_config(TrainConfig, str(cfg)))
    assert not ray.is_initialized()
    assert run("python -m training", "", COMMANDS, ["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset plain@1 lacks members: objective 'reads_views' reads g0.jpg, eda0.txt")
    assert err.count("\n") == 1 and not ray.is_initialized()


def test_epoch_smaller_than_one_batch_round_fails_before_ray(data):
    cfg = TrainConfig(dataset="plain@latest", root=str(data), batch_size=8, run={"workers": 2}, data={"num_workers": 2})
    with pytest.raises(train.RunFailed, match=r"an epoch of 16 samples \(plain@1\) is less than one batch per loader"):
        train.check_run(cfg)
    assert not ray.is_initialized()


def test_trainer_passes_objectives_the_whole_batch_with_their_members(data, reads_views):
    cfg = TrainConfig(
        dataset="views@latest", root=str(data), batch_size=4, objectives={"clip": {}, "reads_views": {"weight": 0.5}}
    )
    train.check_run(cfg)  # the version has every declared member
    trainee = build_trainee(cfg)
    _, urls = resolve_shards(str(data), cfg.dataset)
    stream = ShardStream(
        urls, run_batch_spec(cfg, trainee.model.image_size), batch_size=4, samples_per_epoch=16, num_workers=0
    )
    batch = next(iter(make_loader(stream)))
    total, losses = trainee(batch)
    assert set(losses) == {"clip", "reads_views"} and torch.isfinite(total)
    seen = ReadsViews.seen
    assert seen["g0.jpg"] == (4, 3, 64, 64) and seen["eda0.txt"] == (4, 77) and seen[mask_key("eda0.txt")] == (4, 77)
    assert seen["image"] == (4, 3, 64, 64) and "l0.jpg" not in seen  # only what objectives declare
    losses["reads_views"].backward()  # the view went through the model's vision tower
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainee.model.visual.parameters())


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_missing_dataset_prints_one_error_line_without_traceback(tmp_path):
    write_yaml(tmp_path / "run.yaml", f"dataset: nope@latest\nroot: {tmp_path / 'data'}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "training", "train", "run.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: dataset 'nope': no complete version under {tmp_path / 'data'}"], proc.stderr


def cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_worker_group_larger_than_the_local_ray_fails_with_one_line(data, tmp_path):
    write_yaml(
        tmp_path / "run.yaml",
        f"dataset: plain@latest\nroot: {data}\nrun: {{workers: 64, name: big}}\ndata: {{samples_per_epoch: 100000}}\n",
    )
    proc = cli(tmp_path, "train", "run.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: run 'big': run.workers=64 x run.cpus_per_worker=1 needs 64 CPUs"
    )


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_failing_run_prints_one_line_naming_the_log(data, tmp_path):
    broken = tmp_path / "data"
    write_version(broken, "cut", n=8, seed=5, per_shard=8)
    (shard,) = (broken / "cut" / "v1" / "shards").glob("*.tar")
    shard.write_bytes(shard.read_bytes()[:3000])  # truncated after publishing: the worker's reader fails
    write_yaml(
        tmp_path / "run.yaml",
        f"dataset: cut@latest\nroot: {broken}\nsteps: 2\nbatch_size: 4\n"
        "data: {num_workers: 0}\nrun: {name: cut, log_dir: ./logs}\ncheckpoint: {storage: ./ckpt}\n",
    )
    proc = cli(tmp_path, "train", "run.yaml")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    log = tmp_path / "logs" / "cut" / "ray.log"
    assert len(lines) == 1 and lines[0].endswith(f"; the full log is {log}"), lines
    assert (
        lines[0].startswith("error: run 'cut' failed: catalog.shards.ShardError: ")
        and "not a readable tar shard" in lines[0]
    )
    assert "Traceback" in log.read_text()  # the details are in the log
