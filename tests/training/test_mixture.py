"""Mixing paired, image-only and text-only versions by weight (FLAVA supplement A.2)."""

from pathlib import Path

import pytest
import torch
from support.training_corpus import write_unimodal, write_version

from training import train
from training.config import TrainConfig
from training.data import resolve_shards
from training.mixture import Mixture, Source, draw, positions
from training.trainee import run_batch_spec


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    write_version(root, "pairs", n=48, seed=1, per_shard=16)
    write_unimodal(root, "images", "image", n=32, seed=2, per_shard=16)
    write_unimodal(root, "texts", "text", n=32, seed=3, per_shard=16)
    return str(root)


FLAVA = {"flava_contrastive": {"weight": 1.0}, "flava_mlm": {"weight": 1.0}, "clip": {"weight": 0.5}}
WEIGHTS = {"pairs@1": 0.70, "images@1": 0.15, "texts@1": 0.15}


def test_draws_follow_the_weights_and_are_the_same_everywhere():
    weights = [0.70, 0.15, 0.15]
    drawn = [draw(7, s, weights) for s in range(4000)]
    shares = [drawn.count(i) / len(drawn) for i in range(3)]
    assert shares == pytest.approx(weights, abs=0.025)
    assert drawn == [draw(7, s, weights) for s in range(4000)]  # a pure function of (seed, step)
    assert drawn != [draw(8, s, weights) for s in range(4000)]
    assert positions(7, 4000, weights) == [drawn.count(i) for i in range(3)]


def sources(root, cfg):
    out = []
    for ref, weight in cfg.sources().items():
        manifest, urls = resolve_shards(root, ref)
        modality = manifest.get("modality", "pair")
        spec = run_batch_spec(cfg, 32, modality)
        out.append(Source(ref, weight, tuple(urls), manifest["samples"], spec))
    return out


def run(root, cfg, start, n):
    mix = Mixture(sources(root, cfg), batch_size=4, num_workers=0, seed=cfg.seed, start_step=start)
    it = iter(mix)
    got = []
    for _ in range(n):
        src, batch = next(it)
        got.append((src.ref, batch["modality"], tuple(batch["__key__"])))
    return got, mix.state().to_dict()


def test_batches_carry_their_sources_modality_and_resume_where_an_uninterrupted_run_is(data):
    cfg = TrainConfig(dataset=None, root=data, objectives=FLAVA, data={"mixture": WEIGHTS, "num_workers": 0})
    whole, state = run(data, cfg, 0, 30)
    assert {m for _, m, _ in whole} == {"pair", "image", "text"}
    assert all({"pairs@1": "pair", "images@1": "image", "texts@1": "text"}[ref] == m for ref, m, _ in whole)
    first, saved = run(data, cfg, 0, 12)
    resumed, final = run(data, cfg, 12, 18)
    assert first + resumed == whole
    assert saved == {
        "sampler": {"seed": 0, "step": 12},
        "positions": dict(zip(WEIGHTS, positions(0, 12, list(WEIGHTS.values())), strict=True)),
    }
    assert final == state
    mix = Mixture(sources(data, cfg), batch_size=4, num_workers=0, start_step=12)
    mix.check_resumed(saved)
    with pytest.raises(ValueError, match="does not match"):
        Mixture(sources(data, cfg), batch_size=4, num_workers=0, start_step=11).check_resumed(saved)


def test_unimodal_batches_hold_only_their_modality(data):
    cfg = TrainConfig(dataset=None, root=data, objectives=FLAVA, data={"mixture": WEIGHTS, "num_workers": 0})
    seen = {}
    for ref, modality, _ in run(data, cfg, 0, 30)[0]:
        seen.setdefault(modality, ref)
    mix = Mixture(sources(data, cfg), batch_size=4, num_workers=0)
    batches = {}
    for src, batch in mix:
        batches.setdefault(src.modality, batch)
        if len(batches) == 3:
            break
    assert "text" not in batches["image"] and "image" in batches["image"]
    assert "image" not in batches["text"] and {"text", "text_mask", "caption"} <= set(batches["text"])
    assert {"image", "text"} <= set(batches["pair"])


def test_check_run_names_what_a_mixture_gets_wrong(data):
    ok = TrainConfig(
        dataset=None, root=data, batch_size=4, objectives=FLAVA, data={"mixture": {"pairs@latest": 1, "texts@1": 1}}
    )
    assert list(train.check_run(ok)) == ["pairs@1", "texts@1"]
    assert train.resolve_sources(ok, train.check_run(ok)).data.mixture == {"pairs@1": 1, "texts@1": 1}
    no_image_objective = TrainConfig(
        dataset=None,
        root=data,
        batch_size=4,
        objectives={"clip": {"weight": 1.0}},
        data={"mixture": {"pairs@1": 1, "images@1": 1}},
    )
    with pytest.raises(
        train.RunFailed, match=r"images@1 is image-only data, but no configured objective trains on image"
    ):
        train.check_run(no_image_objective)
    no_text_source = TrainConfig(
        dataset=None,
        root=data,
        batch_size=4,
        objectives={"clip": {"weight": 1.0}, "flava_mlm": {"weight": 1.0}},
        data={"mixture": {"pairs@1": 1}},
    )
    with pytest.raises(
        train.RunFailed, match=r"objective 'flava_mlm' trains on text batches, but the run's data is pair"
    ):
        train.check_run(no_text_source)


def test_config_names_the_data_once():
    with pytest.raises(ValueError, match="either dataset"):
        TrainConfig(dataset="a@1", data={"mixture": {"b@1": 1.0}})
    with pytest.raises(ValueError, match="weight must be > 0"):
        TrainConfig(data={"mixture": {"b@1": 0.0}})
    with pytest.raises(ValueError, match="NAME@VERSION"):
        TrainConfig(data={"mixture": {"b": 1.0}})


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "train").glob("*.yaml")))
def test_every_shipped_training_config_loads_and_builds(name):
    from catalog.config import load_config
    from training.objectives import OBJECTIVES
    from training.trainee import build_trainee
    from training.visual_tokenizer import learn_kmeans, patch_vectors

    cfg = load_config(TrainConfig, REPO / "configs" / "train" / name)
    uses_mim = any(getattr(OBJECTIVES.get(n), "uses_visual_tokenizer", False) for n in cfg.objectives)
    tok = (
        learn_kmeans(patch_vectors(torch.randn(4, 3, 64, 64), 8).reshape(-1, 192), codes=8, iters=1)
        if uses_mim
        else None
    )
    trainee = build_trainee(cfg.resolved(), visual_tokenizer=tok)
    assert set(trainee.objectives) == set(cfg.objectives)


def test_flava_without_a_recorded_codebook_fails_before_ray_naming_the_build_command(data):
    cfg = TrainConfig(
        dataset=None,
        root=data,
        batch_size=4,
        objectives={"flava_contrastive": {"weight": 1.0}, "flava_mim": {"weight": 1.0}},
        data={"mixture": {"pairs@1": 0.8, "images@1": 0.2}},
    )
    with pytest.raises(Exception, match=r"images@1 has no 'visual-tokenizer' artifact .*tokenizer build images@1"):
        train.check_run(cfg)
