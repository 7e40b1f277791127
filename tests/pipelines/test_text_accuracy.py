"""Accuracy of the whole text chain on real captions and on the sample corpus's mess kinds."""

from __future__ import annotations

import csv
import subprocess
from collections import Counter

import pytest
from support.shared import shared_path

from pipelines.filters import TextChain

MAX_REJECT_SHARE = 0.01

SHORT_ENGLISH = [
    "a red circle",
    "a green triangle",
    "a purple star",
    "a small red circle above a blue square",
    "two blue squares",
    "there is a yellow star next to a red circle",
    "a big green triangle below a small blue circle",
    "three red circles on a gray background",
    "a blue square to the left of a green star",
    "a yellow circle",
    "a yellow heart",
    "a red heart",
]
FOREIGN = {
    "de": [
        "ein kleiner roter Kreis über einem blauen Quadrat",
        "ein roter Kreis",
        "ein grünes Dreieck",
        "zwei blaue Quadrate",
        "ein Hund läuft am Strand",
    ],
    "ru": [
        "маленький красный круг над синим квадратом",
        "красный круг",
        "зелёный треугольник",
        "собака бежит по пляжу",
    ],
    "zh": ["蓝色正方形上方的小红圈", "红色的圆圈", "绿色三角形", "一只狗在海滩上奔跑"],
    "es": ["un pequeño círculo rojo encima de un cuadrado azul", "un círculo rojo", "el perro negro corre en la playa"],
}
MEANINGLESS = [
    "IMG_0042.JPG",
    "DSC01234.jpg",
    "img_0.jpg",
    "PXL_20230101_123456.jpg",
    "https://example.com/photo.jpg",
    "0042",
    "12/05/2019",
]
SINGLE_POS = [
    "red blue green",
    "circle square star",
    "dog cat bird",
    "green red blue",
    "star circle square",
    "triangle star circle",
    "blue purple",
    "small tiny",
]


def reasons(chain: TextChain, captions: list[str]) -> list[str | None]:
    return [r["reason"] for r in chain.run([{"caption": c} for c in captions])]


def apertium(mode: str, captions: list[str]) -> list[str]:
    out = subprocess.run(
        ["apertium", "-u", mode], input="\n".join(captions) + "\n", capture_output=True, text=True, check=True
    )
    lines = out.stdout.strip("\n").split("\n")
    assert len(lines) == len(captions), f"apertium {mode} returned {len(lines)} lines for {len(captions)}"
    return lines


def test_real_captions_rejected_at_most_one_percent(chain):
    real_captions = shared_path("realdata", "flickr", "captions_all.tsv")
    with real_captions.open(encoding="utf-8", newline="") as fp:
        captions = [row["caption"] for row in csv.DictReader(fp, delimiter="\t")]
    assert len(captions) == 5000
    counts = Counter(reasons(chain, captions))
    rejected = len(captions) - counts[None]
    print(f"real captions rejected: {rejected}/{len(captions)} = {rejected / len(captions):.2%} {dict(counts)}")
    assert rejected / len(captions) <= MAX_REJECT_SHARE, dict(counts)


def test_short_synthetic_english_is_kept(chain):
    assert reasons(chain, SHORT_ENGLISH) == [None] * len(SHORT_ENGLISH)


@pytest.mark.parametrize("lang", sorted(FOREIGN))
def test_foreign_captions_rejected_as_not_english(chain, lang):
    assert reasons(chain, FOREIGN[lang]) == ["not_english"] * len(FOREIGN[lang])


@pytest.mark.parametrize("mode", ["eng-spa", "eng-cat"])
def test_apertium_translations_rejected_as_not_english(chain, mode):
    translated = apertium(mode, SHORT_ENGLISH)
    assert reasons(chain, translated) == ["not_english"] * len(translated), translated


def test_meaningless_and_single_pos_rejected(chain):
    assert reasons(chain, MEANINGLESS) == ["meaningless_caption"] * len(MEANINGLESS)
    assert reasons(chain, SINGLE_POS) == ["single_pos"] * len(SINGLE_POS)
