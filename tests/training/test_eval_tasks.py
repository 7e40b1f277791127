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


def _single_stream_cfg(root: str, **eval_cfg) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "dataset": "ev@latest",
            "root": root,
            "model": {"family": "single_stream"},
            "objectives": {"simla_itc": {}, "simla_itm": {}},
            "eval": {"sets": ["ev@latest"], **eval_cfg},
        }
    )


def test_a_single_stream_model_is_ranked_by_itc_and_reranked_by_itm(root):
    torch.manual_seed(0)
    model = build_model("tiny", family="single_stream")
    (result,) = evaluate(model, _single_stream_cfg(root, max_images=40, tasks={"retrieval": {"k": 5}}))
    assert "retrieval scorer: itm (top 5 re-scored)" in result.notes
    for name in ("retrieval/i2t_r1", "retrieval/t2i_r5", "retrieval/itc_i2t_r1", "retrieval/itc_t2i_r10"):
        assert 0.0 <= result.metrics[name] <= 1.0 and result.chance[name] > 0, name
    # the top 5 are re-ranked, the rest keep the ITC order: R@10 is the same for both
    assert result.metrics["retrieval/i2t_r10"] == result.metrics["retrieval/itc_i2t_r10"]


def test_the_itm_scorer_orders_each_querys_candidates_by_the_itm_head():
    from training import tokenizer
    from training.eval.scoring import SCORERS, Encoded, itm_log_odds

    torch.manual_seed(0)
    model = build_model("tiny", family="single_stream").eval()
    captions = ["a red circle", "two blue squares", "a green star", "one big triangle", "a yellow square"]
    ids, mask = tokenizer.tokenize(captions)
    with torch.no_grad():
        image_f, image_t = model.encode_image(torch.randn(3, 3, 64, 64))
        text_f, states = model.encode_text(ids)
    images = Encoded(image_f, image_t, torch.ones(image_t.shape[:2], dtype=torch.bool))
    texts = Encoded(text_f, states, mask, ids)
    i2t, t2i = SCORERS.get("itm")(images, texts, k=5, model=model)  # every candidate re-scored
    for q in range(3):
        direct = itm_log_odds(model, image_t[q : q + 1].expand(5, -1, -1), states, mask)
        assert torch.equal(i2t[q].argsort(), direct.argsort())
    for q in range(5):
        direct = itm_log_odds(model, image_t, states[q : q + 1].expand(3, -1, -1), mask[q : q + 1].expand(3, -1))
        assert torch.equal(t2i[q].argsort(), direct.argsort())
    one, _ = SCORERS.get("itm")(images, texts, k=1, model=model)  # only the cosine top 1 re-scored
    assert torch.equal(one.argmax(1), (image_f @ text_f.T).argmax(1))
    assert torch.equal(one.argsort(1)[:, :4], (image_f @ text_f.T).argsort(1)[:, :4])
    with pytest.raises(ValueError, match="needs a single-stream model"):
        SCORERS.get("itm")(images, texts, k=5, model=None)


def test_single_stream_word_patch_pictures_use_its_cross_attention(root):
    from training.eval.base import EvalContext

    torch.manual_seed(0)
    model = build_model("tiny", family="single_stream").eval()
    data = load_eval_set(root, "ev@latest", 64, max_images=4)
    ctx = EvalContext(model, data, False, "cpu", 8)
    texts = ctx.texts(data.captions[:2])
    scores = ctx.word_patch_scores(data.caption_image[0], texts, 0)
    fused = model.fuse(
        texts.tokens[:1], texts.mask[:1], ctx.images().tokens[data.caption_image[0]][None], return_attention=True
    )
    assert scores.shape == (texts.ids.shape[1], model.grid**2)
    torch.testing.assert_close(scores, fused["cross_attention"][0, :, 1:])
    (result,) = evaluate(model, _single_stream_cfg(root, max_images=30, tasks={"alignment": {"drawings": 1}}))
    assert set(result.files) == {"wordpatch-0.png"} and 0.0 <= result.metrics["alignment/localisation_acc"] <= 1.0
