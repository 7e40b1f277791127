"""The evaluation runner over a real dataset version with a (random) tiny model: every task
runs, metrics sit in [0, 1] with their chance beside, drawings are PNGs, late-interaction
models are scored token-wise, and config mistakes fail when the config loads."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from support.training_corpus import write_version

from training.config import TrainConfig
from training.eval.runner import evaluate, report
from training.eval.sets import load_eval_set
from training.model import build_model


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("evalset")
    write_version(d, "ev", n=120, seed=5, per_shard=50)
    return str(d)


def _cfg(root: str, objectives: dict, **eval_cfg) -> TrainConfig:
    return TrainConfig.model_validate(
        {"dataset": "ev@latest", "root": root, "objectives": objectives, "eval": {"sets": ["ev@latest"], **eval_cfg}}
    )


def test_every_task_runs_and_reports_metrics_beside_chance(root):
    torch.manual_seed(0)
    model = build_model("tiny", mask_ratio=0.5)
    model.train()
    (result,) = evaluate(model, _cfg(root, {"clip": {}}))
    assert model.training and model.visual.patch_dropout.enabled  # restored after evaluating
    assert result.ref == "ev@1"
    for name in (
        "zeroshot/shape/top1",
        "zeroshot/colour/top5",
        "retrieval/i2t_r1",
        "retrieval/t2i_r10",
        "probe/shape_colour/top1",
        "alignment/localisation_acc",
    ):
        assert 0.0 <= result.metrics[name] <= 1.0, name
        assert 0.0 < result.chance[name] <= 1.0, name
    assert result.chance["zeroshot/shape/top1"] == pytest.approx(1 / 5)  # the corpus has 5 shapes
    assert result.metrics["retrieval/images"] == 120
    assert "retrieval scorer: cosine" in result.notes
    assert len(result.files) == 4
    png = Image.open(io.BytesIO(result.files["wordpatch-0.png"]))
    assert png.format == "PNG" and png.width > 256
    text = report([result])
    assert "zeroshot/shape/top1" in text and "(chance 0.200" in text
    assert "retrieval/i2t_r1" in report([result], headline=True) and "note:" not in report([result], headline=True)


def test_a_filip_model_is_scored_by_late_interaction(root):
    torch.manual_seed(0)
    model = build_model("tiny")
    tasks = {"retrieval": {"k": 8}, "zeroshot": {"labels": ["colour"]}}
    (late,) = evaluate(model, _cfg(root, {"clip": {}, "filip": {}}, tasks=tasks))
    (cos,) = evaluate(model, _cfg(root, {"clip": {}}, tasks=tasks))
    assert "retrieval scorer: late (top 8 re-scored)" in late.notes
    assert late.metrics["zeroshot/colour/top1"] != cos.metrics["zeroshot/colour/top1"] or (
        late.metrics["retrieval/i2t_r5"] != cos.metrics["retrieval/i2t_r5"]
    )


def test_eval_set_groups_by_image_and_reads_scenes(root):
    data = load_eval_set(root, "ev@latest", 64, max_images=30)
    assert len(data.jpgs) == 30 and data.images.shape == (30, 3, 64, 64)
    idx, names = data.labels("shape_colour")
    assert len(idx) == 30 and all(len(n.split()) == 2 for n in names)
    (shape,) = data.boxes(0)
    x0, y0, x1, y1 = shape["pixels"]
    assert 0 <= x0 < x1 <= 64 + 1 and 0 <= y0 < y1 <= 64 + 1


def test_unknown_task_or_option_fails_when_the_config_loads(root):
    with pytest.raises(ValidationError, match="eval.tasks.zeroshot.ensembel"):
        _cfg(root, {"clip": {}}, tasks={"zeroshot": {"ensembel": "x"}})
    with pytest.raises(ValidationError, match="unknown eval task"):
        _cfg(root, {"clip": {}}, tasks={"zeroshoot": {}})
    with pytest.raises(ValidationError, match="NAME@VERSION"):
        _cfg(root, {"clip": {}}, sets=["demo-eval"])
