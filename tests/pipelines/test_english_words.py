"""The English-word ratio (`pipelines.filters.english`): wordfreq's English list on top of
WordNet and the stop words, placeholders not counted, foreign text still foreign.
"""

from __future__ import annotations

import csv
import subprocess

import pytest
from support.shared import shared_path

from catalog import assets
from pipelines.filters import normalize_caption
from pipelines.filters.english import EnglishWords, english_words
from pipelines.filters.not_english import FOREIGN_FUNCTION_WORDS


@pytest.fixture(scope="module")
def words() -> EnglishWords:
    assets.prepare()
    w = EnglishWords()
    w.setup()
    return w


def real_captions() -> list[str]:
    with shared_path("realdata", "flickr", "captions_all.tsv").open(encoding="utf-8", newline="") as fp:
        return [normalize_caption(row["caption"]) for row in csv.DictReader(fp, delimiter="\t")]


def test_modern_words_are_english(words):
    for word in ("selfie", "waterskiing", "atvs", "wetsuit", "hoodie", "shirtless", "whilst", "wakeboarding"):
        assert words.is_english(word), word
    assert words.ratio("Three people drive ATVs .") == 1.0
    assert words.ratio("A woman takes a selfie in her wetsuit") == 1.0
    assert words.ratio("Two boys waterskiing .") == 1.0


def test_placeholders_are_not_words(words):
    assert [w for w, _ in words.counted_words("<person> holding a cup")] == ["holding", "a", "cup"]
    spanish = "sostiene una estrella roja grande"
    assert words.ratio(f"<person> {spanish}", FOREIGN_FUNCTION_WORDS) == words.ratio(spanish, FOREIGN_FUNCTION_WORDS)
    assert words.ratio("[NAME] sostiene una estrella", FOREIGN_FUNCTION_WORDS) == words.ratio(
        "sostiene una estrella", FOREIGN_FUNCTION_WORDS
    )
    assert words.ratio("<person>") == 0.0  # nothing left to count
    assert words.ratio("<person> and <person> at the beach") == 1.0


def test_names_do_not_count_against_a_caption(words):
    assert words.ratio("Maria Lopez holding a red star") == 1.0
    assert words.ratio("a dog with Xiomara Quispe") == 1.0


def test_foreign_words_stay_foreign(words):
    # in wordfreq's English list, but far more frequent in Spanish / German / Portuguese
    for word in ("playa", "perro", "gato", "rojo", "azul", "hund", "kreis", "einem", "pequeño"):
        assert not words.is_english(word), word
    # an inflection of a WordNet proper noun is no English word ("Chico", a city)
    assert not words.is_english("chicos")
    # Romance/Germanic function words that WordNet lists stay not English when passed
    assert words.ratio("de la", FOREIGN_FUNCTION_WORDS) == 0.0
    assert words.ratio("un perro negro corre en la playa", FOREIGN_FUNCTION_WORDS) < 0.2
    assert words.ratio("ein Hund läuft am Strand", FOREIGN_FUNCTION_WORDS) < 0.5


def test_singleton_is_shared():
    assert english_words() is english_words()


def test_real_captions_almost_all_english(words):
    captions = real_captions()
    low = [c for c in captions if words.ratio(c) < 0.8]
    print(f"real captions with an English-word ratio < 0.8: {len(low)}/{len(captions)}: {low}")
    assert len(low) <= 3  # WordNet + stop words alone: 6 ("Three people drive ATVs .", "Two boys waterskiing .")


@pytest.mark.parametrize("mode", ["eng-spa", "eng-cat"])
def test_translated_real_captions_stay_foreign(words, chain, mode):
    """Apertium's Spanish and Catalan of 1,000 real captions (unknown English words pass through
    untranslated, so the new English words do show up): none reaches `not_english`'s
    `english_ratio` (0.8) and the chain rejects every one."""
    captions = real_captions()[:1000]
    done = subprocess.run(
        ["apertium", "-u", mode], input="\n".join(captions) + "\n", capture_output=True, text=True, check=True
    )
    translated = done.stdout.strip("\n").split("\n")
    assert len(translated) == len(captions)
    assert max(words.ratio(t, FOREIGN_FUNCTION_WORDS) for t in translated) < 0.8
    kept = [r["caption"] for r in chain.run([{"caption": t} for t in translated]) if r["reason"] is None]
    assert kept == []
