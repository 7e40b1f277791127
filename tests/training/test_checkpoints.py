"""`training.checkpoints`: every way of naming a checkpoint (checkpoint dir, its state.pt, run
dir, run name under a storage or the default ones, s3://), the latest complete step wins,
incomplete checkpoints are skipped, and every mistake is one line naming what exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from catalog.errors import UserError
from training.checkpoints import (
    CheckpointError,
    CheckpointNotFound,
    load_model,
    load_state,
    resolve_checkpoint,
    runs_in,
)
from training.config import TrainConfig
from training.model import PRESET_DIR
from training.trainee import build_trainee


def train_config(name: str = "alpha", **extra) -> TrainConfig:
    return TrainConfig.model_validate({"dataset": "demo@1", "run": {"name": name}, **extra})


def write_checkpoint(run_dir: Path, step: int, cfg: TrainConfig, seed: int = 0) -> Path:
    """A checkpoint dir as `training.train._save` writes it (rank 0's state.pt + an RNG file)."""
    torch.manual_seed(seed)
    trainee = build_trainee(cfg)
    optimizer = torch.optim.AdamW(trainee.parameters())
    d = run_dir / f"checkpoint-{step:08d}"
    d.mkdir(parents=True)
    torch.save(
        {
            "model": trainee.model.state_dict(),
            "objectives": trainee.objectives.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": {},
            "scaler": {},
            "step": step,
            "history": {"first_loss": 1.0},
            "data_position": {"batches_per_rank": step, "world": 1},
            "data": {},
            "config": cfg.to_dict(),
        },
        d / "state.pt",
    )
    torch.save({"torch": torch.get_rng_state()}, d / "rng-rank0.pt")
    return d


def incomplete_checkpoint(run_dir: Path, step: int) -> Path:
    """A checkpoint dir without state.pt (being written, or its worker was killed)."""
    d = run_dir / f"checkpoint-{step:08d}"
    d.mkdir(parents=True)
    torch.save({"torch": torch.get_rng_state()}, d / "rng-rank1.pt")
    return d


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    """runs alpha (steps 10, 20, 100 complete; 200 incomplete) and beta (step 5)."""
    root = tmp_path_factory.mktemp("ckpt")
    cfg = train_config("alpha", model={"mask_ratio": 0.5})
    for step in (10, 20, 100):
        write_checkpoint(root / "alpha", step, cfg, seed=step)
    incomplete_checkpoint(root / "alpha", 200)
    (root / "alpha" / "checkpoint_manager_snapshot.json").write_text("{}")
    write_checkpoint(root / "beta", 5, train_config("beta"))
    (root / "empty-run").mkdir()
    incomplete_checkpoint(root / "empty-run", 10)
    return root


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert isinstance(exc.value, UserError) and "\n" not in text
    return text


def test_a_checkpoint_dir_or_its_state_file(storage):
    d = storage / "alpha" / "checkpoint-00000020"
    for spec in (d, d / "state.pt", f"{d}/"):
        ckpt = resolve_checkpoint(str(spec))
        assert (ckpt.path, ckpt.run, ckpt.step) == (str(d), "alpha", 20)
        assert ckpt.config == train_config("alpha", model={"mask_ratio": 0.5})


def test_a_run_dir_gives_its_latest_complete_checkpoint(storage):
    ckpt = resolve_checkpoint(str(storage / "alpha"))  # 200 has no state.pt: skipped
    assert (ckpt.path, ckpt.step) == (str(storage / "alpha" / "checkpoint-00000100"), 100)


def test_a_run_name_under_a_storage(storage):
    assert resolve_checkpoint("alpha", storage=str(storage)).step == 100
    assert resolve_checkpoint("beta", storage=str(storage)).run == "beta"
    assert resolve_checkpoint("alpha/checkpoint-00000010", storage=str(storage)).step == 10
    assert runs_in(str(storage)) == ["alpha", "beta"]


def test_run_names_default_to_the_configs_storage_then_trainconfigs(storage, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(storage / "beta", tmp_path / "runs" / "checkpoints" / "beta")
    shutil.copytree(storage / "alpha", tmp_path / "runs" / "alpha")  # checkpoint.storage: ./runs
    (tmp_path / "runs" / "beta").mkdir()  # a log dir of the same name holds no checkpoint
    beta = resolve_checkpoint("beta")
    assert (beta.run, Path(beta.path)) == ("beta", tmp_path / "runs" / "checkpoints" / "beta" / "checkpoint-00000005")
    assert resolve_checkpoint("alpha").step == 100
    with pytest.raises(CheckpointNotFound) as exc:
        resolve_checkpoint("gamma")
    msg = one_line(exc)
    assert "runs/checkpoints/gamma (missing)" in msg and "runs/gamma (missing)" in msg
    assert "alpha, beta" in msg


def test_load_state_and_model(storage):
    ckpt = resolve_checkpoint(str(storage / "alpha"))
    state = load_state(ckpt)
    assert state["step"] == 100 and set(state) >= {"model", "objectives", "optimizer", "config"}
    model = load_model(ckpt)
    assert not model.training and not model.visual.patch_dropout.enabled  # mask_ratio 0.5 trained, off here
    saved = state["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first, _ = model.encode_image(image)
        again, _ = model.encode_image(image)
    assert torch.equal(first, again)  # no random patch dropout


def test_unknown_run_lists_the_runs(storage):
    with pytest.raises(CheckpointNotFound) as exc:
        resolve_checkpoint("gamma", storage=str(storage))
    msg = one_line(exc)
    assert f"{storage}/gamma (missing)" in msg and "alpha, beta" in msg and "empty-run" not in msg


def test_a_run_without_a_complete_checkpoint_names_the_incomplete_ones(storage):
    for spec, kwargs in ((str(storage / "empty-run"), {}), ("empty-run", {"storage": str(storage)})):
        with pytest.raises(CheckpointNotFound) as exc:
            resolve_checkpoint(spec, **kwargs)
        assert "no complete checkpoint" in one_line(exc) and "checkpoint-00000010" in str(exc.value)


def test_other_directories_and_paths(storage, tmp_path):
    with pytest.raises(CheckpointNotFound) as exc:
        resolve_checkpoint(str(storage))  # the storage itself: name a run
    assert "name a run: alpha, beta" in one_line(exc)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CheckpointNotFound) as exc:
        resolve_checkpoint(str(tmp_path))
    assert "neither state.pt nor checkpoint-*" in one_line(exc) and "notes.txt" in str(exc.value)
    with pytest.raises(CheckpointNotFound) as exc:
        resolve_checkpoint(str(tmp_path / "nowhere"))
    assert "no such directory" in one_line(exc)


def test_files_that_are_not_lipforge_checkpoints(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint(str(tmp_path / "a"))
    assert "cannot be read as a torch checkpoint" in one_line(exc)
    (tmp_path / "b").mkdir()
    torch.save({"weights": torch.zeros(1)}, tmp_path / "b" / "state.pt")
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint(str(tmp_path / "b"))
    assert "not a lipforge training checkpoint" in one_line(exc)
    (tmp_path / "c").mkdir()
    torch.save({"model": {}, "config": {"dataset": "demo@1", "stepz": 3}}, tmp_path / "c" / "state.pt")
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint(str(tmp_path / "c"))
    assert "stepz" in one_line(exc)


def test_a_preset_changed_since_training(tmp_path):
    preset = tmp_path / "mine.json"
    preset.write_text((PRESET_DIR / "tiny.json").read_text())
    write_checkpoint(tmp_path / "run", 3, train_config("mine", model={"preset": str(preset)}))
    ckpt = resolve_checkpoint(str(tmp_path / "run"))
    assert load_model(ckpt).text_width == 64
    edited = json.loads(preset.read_text())
    edited["text"]["layers"] = 1
    preset.write_text(json.dumps(edited))
    with pytest.raises(CheckpointError) as exc:
        load_model(ckpt)
    assert "do not fit model.preset" in one_line(exc)
    preset.unlink()
    with pytest.raises(CheckpointError) as exc:
        load_model(ckpt)
    assert "no such preset" in one_line(exc)


def test_a_run_on_s3(storage):
    from support.moto import moto_s3

    with moto_s3("ckpt") as bucket:
        from catalog import storage as stores

        for f in (storage / "alpha").rglob("*"):
            if f.is_file():
                stores.upload_file(str(f), f"{bucket}/runs/{f.relative_to(storage)}")
        ckpt = resolve_checkpoint("alpha", storage=f"{bucket}/runs")
        assert (ckpt.path, ckpt.step) == (f"{bucket}/runs/alpha/checkpoint-00000100", 100)
        assert resolve_checkpoint(f"{bucket}/runs/alpha/checkpoint-00000020").step == 20
        local = load_model(resolve_checkpoint(str(storage / "alpha")))
        remote = load_model(ckpt)
        assert all(torch.equal(v, local.state_dict()[k]) for k, v in remote.state_dict().items())
        with pytest.raises(CheckpointNotFound) as exc:
            resolve_checkpoint("gamma", storage=f"{bucket}/runs")
        assert "runs with checkpoints there: alpha" in one_line(exc)
