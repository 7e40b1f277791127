"""`python -m training export ... --format open_clip`: open_clip builds the exported model from
the written config, loads its weights strictly, tokenizes as lipforge does, and encodes
images and captions (with `<person>`, at full context length) as lipforge's DualEncoder does;
the logit scale is the trained temperature; the CLI prints how to load it or one error line."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg
from safetensors.torch import load_file

from training import tokenizer
from training.checkpoints import load_model, resolve_checkpoint
from training.config import TrainConfig
from training.export import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ExportError,
    export_checkpoint,
    open_clip_model_cfg,
    trained_log_scale,
    write_open_clip,
)
from training.model import DualEncoder, build_model, load_preset
from training.trainee import build_trainee

ROOT = Path(__file__).resolve().parents[2]
CAPTIONS = [
    "a photo of <person> walking a dog on the beach",
    "<person> and <person> at a <mask> party",
    "a red bicycle",
    " ".join(["many words in a very long caption"] * 20),  # truncated to the full context length
    "",
]
TOLERANCE = 1e-5


def random_tiny() -> DualEncoder:
    """The tiny dual encoder with every weight (layer norms too) perturbed away from its init."""
    torch.manual_seed(0)
    model = build_model("tiny", mask_ratio=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def max_diffs(ours: DualEncoder, theirs: torch.nn.Module, texts: torch.Tensor) -> tuple[float, float]:
    torch.manual_seed(1)
    image = torch.randn(3, 3, ours.image_size, ours.image_size)
    with torch.no_grad():
        image_ours, _ = ours.encode_image(image)
        text_ours, _ = ours.encode_text(texts)
        image_theirs = theirs.encode_image(image, normalize=True)
        text_theirs = theirs.encode_text(texts, normalize=True)
    return (image_ours - image_theirs).abs().max().item(), (text_ours - text_theirs).abs().max().item()


def test_open_clip_loads_it_strictly_and_encodes_as_lipforge(tmp_path):
    model = random_tiny()
    written = write_open_clip(model, load_preset("tiny"), tmp_path / "out", math.log(33.0))
    assert sorted(os.listdir(tmp_path / "out")) == [CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((tmp_path / "out" / CONFIG_FILE).read_text())
    assert config["model_cfg"] == written["model_cfg"]
    text_cfg = config["model_cfg"]["text_cfg"]
    assert (text_cfg["vocab_size"], text_cfg["pool_type"], text_cfg["eos_id"]) == (49410, "eos", 49407)
    assert config["model_cfg"]["vision_cfg"]["patch_dropout"] == 0.0

    # the class open_clip picks for this config, weights loaded strictly
    clip = open_clip.model.CLIP(**config["model_cfg"])
    result = clip.load_state_dict(load_file(written["weights"]), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # and the one-line load the command prints (local-dir: finds config and weights itself)
    loaded, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'out'}")
    loaded.eval()
    assert type(loaded) is open_clip.model.CLIP
    assert loaded.logit_scale.exp().item() == pytest.approx(33.0)
    assert preprocess.transforms[0].size == 64

    ids, _ = tokenizer.tokenize(CAPTIONS)
    assert (ids == tokenizer.tokenizer().encoder["<person>"]).any()
    assert (ids[3] != 0).all() and ids[3, -1] == 49407  # the long caption fills the context
    assert torch.equal(open_clip.get_tokenizer(f"local-dir:{tmp_path / 'out'}")(CAPTIONS), ids)
    image_diff, text_diff = max_diffs(model, loaded, ids)
    print(f"tiny random: max |image diff| {image_diff:.3g}, max |text diff| {text_diff:.3g}")
    assert image_diff < TOLERANCE and text_diff < TOLERANCE


def test_argmax_pooling_would_not_match(tmp_path):
    """Why pool_type eos: with CLIP's default argmax a caption with `<person>` pools elsewhere."""
    model = random_tiny()
    write_open_clip(model, load_preset("tiny"), tmp_path / "out")
    wrong = open_clip.create_model(f"local-dir:{tmp_path / 'out'}").eval()
    wrong.text_pool_type = "argmax"
    ids, _ = tokenizer.tokenize(CAPTIONS[:1])
    with torch.no_grad():
        assert (model.encode_text(ids)[0] - wrong.encode_text(ids, normalize=True)).abs().max() > 1e-2


def write_checkpoint(run_dir: Path, step: int, cfg: TrainConfig, log_scale: float) -> Path:
    """A checkpoint dir as `training.train._save` writes it, the clip temperature set to exp(-log_scale)."""
    torch.manual_seed(step)
    trainee = build_trainee(cfg)
    with torch.no_grad():
        for p in trainee.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        trainee.objectives["clip"].log_scale.fill_(log_scale)
    d = run_dir / f"checkpoint-{step:08d}"
    d.mkdir(parents=True)
    torch.save(
        {
            "model": trainee.model.state_dict(),
            "objectives": trainee.objectives.state_dict(),
            "optimizer": torch.optim.AdamW(trainee.parameters()).state_dict(),
            "scheduler": {},
            "scaler": {},
            "step": step,
            "history": {},
            "data": {},
            "config": cfg.to_dict(),
        },
        d / "state.pt",
    )
    return d


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig.model_validate(
        {
            "dataset": "demo@1",
            "run": {"name": "declip-ish"},
            "model": {"mask_ratio": 0.5},
            "objectives": {"clip": {}, "declip_mlm": {"weight": 0.2}},
        }
    )
    write_checkpoint(root / "declip-ish", 10, cfg, math.log(1 / 0.05))
    write_checkpoint(root / "declip-ish", 20, cfg, math.log(1 / 0.04))
    return root


def test_a_checkpoint_exports_the_trained_temperature_and_leaves_objective_heads(storage, tmp_path):
    ckpt = resolve_checkpoint("declip-ish", storage=str(storage))
    summary = export_checkpoint(ckpt, tmp_path / "out")
    assert (summary["run"], summary["step"]) == ("declip-ish", 20)
    assert summary["logit_scale"] == pytest.approx(25.0)
    assert "clip" not in summary["not_exported"] and summary["not_exported"]["declip_mlm"] > 0
    config = json.loads((tmp_path / "out" / CONFIG_FILE).read_text())
    assert config["lipforge"]["step"] == 20 and "declip_mlm" in config["lipforge"]["not_exported"]
    loaded = open_clip.create_model(f"local-dir:{tmp_path / 'out'}").eval()
    assert loaded.logit_scale.exp().item() == pytest.approx(25.0)
    ids, _ = tokenizer.tokenize(CAPTIONS)
    image_diff, text_diff = max_diffs(load_model(ckpt), loaded, ids)
    print(f"checkpoint: max |image diff| {image_diff:.3g}, max |text diff| {text_diff:.3g}")
    assert image_diff < TOLERANCE and text_diff < TOLERANCE


@pytest.mark.parametrize(
    ("objectives", "state", "expected", "source"),
    [
        ({"clip": {}, "filip": {}}, {"clip.log_scale": 3.0, "filip.log_scale": 1.0}, 3.0, "clip"),
        ({"clip": {}}, {"clip.log_scale": 6.0}, math.log(100.0), "clip"),  # clamped at max_logit_scale
        ({"flava_contrastive": {}}, {"flava_contrastive.log_scale": -1.0}, 0.0, "flava_contrastive"),  # at 1
        ({"filip": {}}, {"filip.log_scale": 2.5}, 2.5, "filip"),
        ({"declip_mlm": {}}, {"declip_mlm.head.bias": 0.0}, math.log(1 / 0.07), None),
    ],
)
def test_which_temperature_becomes_the_logit_scale(objectives, state, expected, source):
    cfg = TrainConfig.model_validate({"dataset": "demo@1", "objectives": objectives})
    log_scale, name = trained_log_scale(cfg, {k: torch.tensor(v) for k, v in state.items()})
    assert (log_scale, name) == (pytest.approx(expected), source)


@pytest.mark.parametrize("name", ["ViT-B-16", "ViT-B-32", "ViT-L-14"])
def test_preset_configs_match_open_clips_own(name):
    """The exported config of each size preset is open_clip's own config of that name, but for
    the vocabulary (two specials more) and the pooling at the end-of-text id."""
    ours = open_clip_model_cfg(load_preset(name))
    theirs = open_clip.get_model_config(name)
    assert ours["embed_dim"] == theirs["embed_dim"] and ours["quick_gelu"] == theirs.get("quick_gelu", False)
    assert dataclasses.asdict(CLIPVisionCfg(**ours["vision_cfg"])) == dataclasses.asdict(
        CLIPVisionCfg(**theirs["vision_cfg"])
    )
    ours_text = dataclasses.asdict(CLIPTextCfg(**ours["text_cfg"]))
    theirs_text = dataclasses.asdict(CLIPTextCfg(**theirs["text_cfg"]))
    differ = {k for k in ours_text if ours_text[k] != theirs_text[k]}
    assert differ == {"vocab_size", "pool_type", "eos_id", "tokenizer_kwargs"}
    assert (ours_text["vocab_size"], theirs_text["vocab_size"]) == (49410, 49408)


def test_out_must_be_new_empty_or_an_earlier_export(tmp_path):
    model = random_tiny()
    write_open_clip(model, load_preset("tiny"), tmp_path / "out")
    write_open_clip(model, load_preset("tiny"), tmp_path / "out")  # overwriting an export is fine
    (tmp_path / "out" / "other.bin").write_bytes(b"x")
    with pytest.raises(ExportError, match="not empty"):
        write_open_clip(model, load_preset("tiny"), tmp_path / "out")
    with pytest.raises(ExportError, match="local directory"):
        write_open_clip(model, load_preset("tiny"), "s3://bucket/out")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "training", "export", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_end_to_end(storage, tmp_path):
    out = tmp_path / "exported"
    done = cli("declip-ish", "--format", "open_clip", str(out), "--storage", str(storage), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "step 20" in done.stdout and "not exported" in done.stdout and "declip_mlm" in done.stdout
    assert f'open_clip.create_model_and_transforms("local-dir:{out}")' in done.stdout
    loaded = open_clip.create_model(f"local-dir:{out}").eval()
    ids, _ = tokenizer.tokenize(CAPTIONS)
    image_diff, text_diff = max_diffs(load_model(resolve_checkpoint(str(storage / "declip-ish"))), loaded, ids)
    assert image_diff < TOLERANCE and text_diff < TOLERANCE

    failed = cli("no-such-run", str(tmp_path / "x"), "--storage", str(storage), cwd=tmp_path)
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: checkpoint 'no-such-run'"), failed.stderr
    assert "declip-ish" in lines[0] and "Traceback" not in failed.stderr
    assert not (tmp_path / "x").exists()


def test_a_single_stream_run_is_not_exported_and_says_why(tmp_path):
    from training.checkpoints import CheckpointError, RunCheckpoint
    from training.export import export_checkpoint

    cfg = TrainConfig(dataset="x@1", model={"family": "single_stream"}, objectives={"simla_itm": {}})
    ckpt = RunCheckpoint(path=str(tmp_path / "checkpoint-00000010"), run="simla", step=10, config=cfg)
    with pytest.raises(CheckpointError, match="trained a single_stream model .*python -m training eval"):
        export_checkpoint(ckpt, tmp_path / "out")
