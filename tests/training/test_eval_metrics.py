"""Evaluation metrics on hand-made embeddings with known answers (training.eval)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.eval.metrics import best_positive_rank, chance_recall, chance_topk, recall_at, topk_accuracy
from training.eval.scoring import (
    SCORERS,
    Encoded,
    class_scores_global,
    class_scores_tokenwise,
)
from training.eval.sets import EvalSet, label_of
from training.eval.tasks.alignment import caption_words, inside, patch_centres, targets
from training.eval.tasks.probe import fit_probe, split_of
from training.eval.tasks.zeroshot import prompt


def test_recall_counts_an_image_right_when_any_of_its_captions_is_retrieved():
    # 2 images, 4 captions: image 0 owns captions 0, 1; image 1 owns 2, 3
    positives = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.5, 0.2],  # best is caption 1 (its own): R@1 hit
            [0.8, 0.1, 0.2, 0.7],  # best is caption 0 (not its own); its best own (3) ranks 2nd
        ]
    )
    r = recall_at(scores, positives, (1, 2, 3))
    assert r == {1: 0.5, 2: 1.0, 3: 1.0}
    assert best_positive_rank(scores, positives).tolist() == [0, 1]
    # the caption side: each caption has one image
    t2i = recall_at(scores.T, positives.T, (1, 2))
    assert t2i[1] == pytest.approx(2 / 4)  # captions 1 and 3 rank their own image first
    assert t2i[2] == 1.0


def test_ties_count_against_the_query_so_a_collapsed_model_scores_chance_not_perfect():
    positives = torch.eye(5, dtype=torch.bool)
    flat = torch.zeros(5, 5)
    assert recall_at(flat, positives, (1, 5)) == {1: 0.0, 5: 1.0}
    # one tie with the positive at the top: pessimistic rank 1
    scores = torch.tensor([[1.0, 1.0, 0.0]])
    assert best_positive_rank(scores, torch.tensor([[True, False, False]])).item() == 1
    # two positives tied with each other are not negatives
    assert best_positive_rank(scores, torch.tensor([[True, True, False]])).item() == 0


def test_chance_recall_is_the_hypergeometric_expectation():
    positives = torch.zeros(1, 10, dtype=torch.bool)
    positives[0, :2] = True  # 2 of 10 are right
    c = chance_recall(positives, (1, 5, 10))
    assert c[1] == pytest.approx(0.2)
    assert c[5] == pytest.approx(1 - (8 * 7 * 6 * 5 * 4) / (10 * 9 * 8 * 7 * 6))
    assert c[10] == pytest.approx(1.0)
    # a random ranking reaches it on average
    gen = torch.Generator().manual_seed(0)
    hits = [recall_at(torch.rand(1, 10, generator=gen), positives, (5,))[5] for _ in range(4000)]
    assert np.mean(hits) == pytest.approx(c[5], abs=0.02)
    assert chance_topk(3) == {1: 1 / 3, 5: 1.0}


def test_topk_accuracy():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.9, 0.5, 0.1], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 1, 0])
    assert topk_accuracy(scores, labels, (1, 2)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}


def _encoded(n: int, tokens: int, d: int, gen: torch.Generator, pad_from: list[int] | None = None) -> Encoded:
    toks = F.normalize(torch.randn(n, tokens, d, generator=gen), dim=-1)
    mask = torch.ones(n, tokens, dtype=torch.bool)
    for i, p in enumerate(pad_from or []):
        mask[i, p:] = False
    feats = F.normalize(torch.randn(n, d, generator=gen), dim=-1)
    return Encoded(feats, toks, mask)


def _dense_i2t(img_tokens: torch.Tensor, txt_tokens: torch.Tensor, txt_mask: torch.Tensor) -> float:
    """FILIP Eq. 4 by loops: mean over image tokens of the max over the text's REAL tokens."""
    total = 0.0
    for a in img_tokens:
        total += max(float(a @ b) for b, real in zip(txt_tokens, txt_mask) if real)
    return total / len(img_tokens)


def test_tokenwise_ensemble_equals_a_dense_reference_and_ignores_padding():
    gen = torch.Generator().manual_seed(1)
    images = _encoded(4, 6, 8, gen)
    templates = [_encoded(3, 7, 8, gen, pad_from=[3, 5, 7]) for _ in range(2)]  # 2 classes x 3 templates
    got = class_scores_tokenwise(images, templates)
    want = torch.tensor(
        [
            [np.mean([_dense_i2t(images.tokens[i], t.tokens[j], t.mask[j]) for j in range(3)]) for t in templates]
            for i in range(4)
        ]
    )
    assert torch.allclose(got, want.float(), atol=1e-5)
    # padding content is never read: overwrite every padded token with something that would win every max
    for t in templates:
        t.tokens[~t.mask] = images.tokens[0, 0]
    assert torch.allclose(class_scores_tokenwise(images, templates), got, atol=1e-6)
    # averaging token matrices position by position (padding included) gives a different answer
    naive_cols = []
    for t in templates:
        mean_tokens = t.tokens.mean(0, keepdim=True)
        naive_cols.append(
            torch.tensor(
                [_dense_i2t(images.tokens[i], mean_tokens[0], torch.ones(7, dtype=torch.bool)) for i in range(4)]
            )
        )
    assert not torch.allclose(torch.stack(naive_cols, 1).float(), got, atol=1e-3)


def test_global_ensemble_is_the_renormalised_mean_of_normalised_template_embeddings():
    gen = torch.Generator().manual_seed(2)
    images = _encoded(3, 2, 4, gen)
    templates = [_encoded(5, 2, 4, gen) for _ in range(3)]
    got = class_scores_global(images, templates)
    class0 = F.normalize(templates[0].features.mean(0), dim=0)
    assert torch.allclose(got[:, 0], images.features @ class0, atol=1e-6)


def test_late_scorer_with_every_candidate_is_exact_and_with_few_keeps_the_rest_below():
    gen = torch.Generator().manual_seed(3)
    images = _encoded(5, 4, 8, gen)
    texts = _encoded(7, 6, 8, gen, pad_from=[2, 3, 4, 5, 6, 6, 3])
    i2t, t2i = SCORERS.get("late")(images, texts, k=100)
    for i in range(5):
        for j in range(7):
            assert i2t[i, j].item() == pytest.approx(
                _dense_i2t(images.tokens[i], texts.tokens[j], texts.mask[j]), abs=1e-5
            )
            real = texts.tokens[j][texts.mask[j]]
            assert t2i[j, i].item() == pytest.approx(_dense_i2t(real, images.tokens[i], images.mask[i]), abs=1e-5)
    few, _ = SCORERS.get("late")(images, texts, k=2)
    g = images.features @ texts.features.T
    for i in range(5):
        top = set(g[i].topk(2).indices.tolist())
        rest = [j for j in range(7) if j not in top]
        assert min(few[i, j] for j in top) > max(few[i, j] for j in rest)  # re-scored candidates first
        order_rest = sorted(rest, key=lambda j: -few[i, j].item())
        assert order_rest == sorted(rest, key=lambda j: -g[i, j].item())  # the others keep cosine order
    cos_i2t, cos_t2i = SCORERS.get("cosine")(images, texts)
    assert torch.equal(cos_t2i, cos_i2t.T)


def test_linear_probe_reaches_100_percent_on_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 5
    y = np.repeat(np.arange(4), 50)
    x = centres[y] + rng.normal(size=(200, 16)) * 0.3
    splits = [split_of(f"key{i}", 0.2, 0.2) for i in range(200)]
    assert {"train", "val", "test"} <= set(splits)
    acc, c = fit_probe(x, y.astype(str), splits, [0.01, 1.0, 100.0])
    assert acc == 1.0
    # and near chance on random labels
    acc_random, _ = fit_probe(x, rng.integers(0, 4, 200).astype(str), splits, [0.01, 1.0])
    assert acc_random < 0.6


def test_prompts_follow_filip_eq6_with_articles():
    assert prompt("a", "red circle") == "a red circle."
    assert prompt("a picture of a", "orange star", "a shape", "drawn on a background") == (
        "a picture of an orange star, a shape. drawn on a background."
    )


def test_labels_are_defined_only_where_unambiguous():
    one = {"scene": {"shapes": [{"kind": "circle", "colour": "red"}]}}
    two_same = {"scene": {"shapes": [{"kind": "circle", "colour": "red"}, {"kind": "circle", "colour": "blue"}]}}
    assert label_of(one, "shape_colour") == "red circle"
    assert label_of(two_same, "shape") == "circle"
    assert label_of(two_same, "colour") is None
    assert label_of({"label": "dog"}, "label") == "dog"
    assert label_of({}, "shape") is None


def test_caption_words_group_bpe_pieces_and_targets_match_scene_words():
    from training import tokenizer

    ids, mask = tokenizer.tokenize(["a red hexagon above two circles"])
    words = caption_words(ids[0], mask[0])
    assert [w for w, _ in words] == ["a", "red", "hexagon", "above", "two", "circles"]
    assert len(words[2][1]) == 2  # hex + agon
    shapes = [
        {"kind": "hexagon", "colour": "red", "pixels": (0, 0, 10, 10)},
        {"kind": "circle", "colour": "blue", "pixels": (20, 20, 30, 30)},
    ]
    assert targets("red", shapes) == [(0, 0, 10, 10)]
    assert targets("circles", shapes) == [(20, 20, 30, 30)]
    assert targets("above", shapes) == []
    centres = patch_centres(4, 64)  # 16-pixel patches, centres at 8, 24, 40, 56
    assert centres[0].tolist() == [8, 8] and centres[1].tolist() == [24, 8]  # row-major, x first
    assert inside(centres, [(0, 0, 30, 30)]).sum() == 4


def test_boxes_follow_the_model_input_crop():
    img = torch.zeros(1, 3, 64, 64)
    scene = {"shapes": [{"kind": "circle", "colour": "red", "box": [0.5, 0.0, 1.0, 0.5]}]}
    data = EvalSet("x@1", img, ["c"], [0], [b""], [{"scene": scene}], ["k"], [(200, 100)])
    # 200x100 -> 128x64, centre crop x 32..96: box x 0.5..1.0 -> 64..128 -> 32..96 in the crop
    (shape,) = data.boxes(0)
    assert shape["pixels"] == (32.0, 0.0, 96.0, 32.0)


def test_positives_group_captions_by_image_and_equal_texts():
    img = torch.zeros(3, 3, 8, 8)
    data = EvalSet(
        "x@1", img, ["a", "b", "a", "c"], [0, 0, 1, 2], [b"1", b"2", b"3"], [{}] * 3, ["k"] * 3, [(8, 8)] * 3
    )
    assert data.positives.int().tolist() == [[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
