"""EDA operations and apertium back-translation (real WordNet, real apertium)."""

from __future__ import annotations

import random

import pytest

from augment.text.backtranslate import BackTranslator, classify
from augment.text.eda import Eda, WordNetSynonyms
from augment.text.protect import Protector
from augment.text.translate.apertium import ApertiumTranslator, deformat, reformat
from augment.text.translate.cache import TranslationCache
from augment.views import view_rng
from catalog import assets

CAPTIONS = [
    "A man named <person> rides a brown horse along the sandy beach near the old wooden pier .",
    "Two young children are playing with a red ball in the green park on a sunny afternoon .",
    "A black dog jumps over a fallen tree trunk in the snowy forest while <person> watches .",
]


@pytest.fixture(scope="module")
def eda() -> Eda:
    assets.prepare()  # WordNetSynonyms reads the prepared copy; preparing is the caller's job
    return Eda(WordNetSynonyms(), Protector(["<person>"]), {"sr": 0.2, "ri": 0.2, "rs": 0.2, "rd": 0.2})


def test_synonym_replacement_changes_alpha_share_and_keeps_person(eda: Eda) -> None:
    for caption in CAPTIONS:
        words = [t for t in caption.split() if t.isalpha()]
        for seed in range(5):
            out = eda.apply(caption, "sr", random.Random(seed))
            assert out.changed == max(1, int(0.2 * len(words)))
            assert out.text.count("<person>") == caption.count("<person>")
            assert out.text != caption
            # single-word synonyms keep token positions: exactly `changed` tokens differ
            if len(out.text.split()) == len(caption.split()):
                assert sum(a != b for a, b in zip(caption.split(), out.text.split())) == out.changed


def test_random_swap_and_insertion_counts(eda: Eda) -> None:
    caption = CAPTIONS[0]
    n = max(1, int(0.2 * 15))
    out = eda.apply(caption, "rs", random.Random(1))
    assert out.changed == n and sorted(out.text.split()) == sorted(caption.split())
    assert out.text.split().index("<person>") == caption.split().index("<person>")
    ins = eda.apply(caption, "ri", random.Random(2))
    assert ins.changed == n and len(ins.text.split()) >= len(caption.split()) + n
    assert ins.text.count("<person>") == 1


def test_random_deletion_rate_follows_alpha_and_never_deletes_person(eda: Eda) -> None:
    deleted = total = 0
    for seed in range(400):
        caption = CAPTIONS[seed % 3]
        out = eda.apply(caption, "rd", random.Random(seed))
        assert out.text.count("<person>") == caption.count("<person>")
        assert len(caption.split()) - len(out.text.split()) == out.changed
        deleted += out.changed
        total += sum(1 for t in caption.split() if t.isalpha())
    assert 0.16 < deleted / total < 0.24


def test_eda_is_deterministic_by_key_seed_and_view(eda: Eda) -> None:
    a = [eda.choose_and_apply(c, ["sr", "rs", "rd"], view_rng("k1", 0, "eda0")).text for c in CAPTIONS]
    b = [eda.choose_and_apply(c, ["sr", "rs", "rd"], view_rng("k1", 0, "eda0")).text for c in CAPTIONS]
    c = [eda.choose_and_apply(c, ["sr", "rs", "rd"], view_rng("k1", 1, "eda0")).text for c in CAPTIONS * 3]
    assert a == b
    assert c[:3] != a or c[3:6] != a  # another seed gives other views


ODD = [
    "A line\nbreak inside a caption .",
    "price ^5$ and $6^ at the shop",
    "an email @home and *stars* on a shirt",
    "[brackets] {braces} <angle> and /slashes\\ too",
    "<b>bold</b> <i>html</i> &amp; <br/> tags",
    "",
    "\x00 null byte caption",
    "[<7>] a fake index superblank",
    "A woman named <person> walks a dog in the park .",
    "A girl going into a wooden building .",
]


def test_deformat_reformat_round_trip_of_odd_characters() -> None:
    for text in ODD:
        assert reformat(deformat(text)) == " ".join(text.replace("\0", " ").split())


@pytest.mark.parametrize("pivot", ["spa", "cat"])
def test_apertium_round_trip_keeps_alignment_and_person(pivot: str, tmp_path) -> None:
    protector = Protector(["<person>"])
    with ApertiumTranslator(batch_size=4) as translator:
        bt = BackTranslator(translator, protector, TranslationCache(tmp_path))
        probe = [f"Caption number {w} shows a {w} dog ." for w in ("red", "blue", "green", "yellow", "black", "white")]
        texts = []
        for i, odd in enumerate(ODD):  # every odd caption sits between two probes
            texts += [probe[i % 6], odd]
        results = bt.run(texts, pivot)
        assert len(results) == len(texts)
        for i in range(0, len(texts), 2):  # every probe comes back as a probe, not as its neighbour
            assert results[i].status == "ok" and "dog" in (results[i].text or ""), (texts[i], results[i])
        person = results[ODD.index("A woman named <person> walks a dog in the park .") * 2 + 1]
        assert person.status == "ok" and person.text is not None and person.text.count("<person>") == 1
        assert results[ODD.index("") * 2 + 1].status == "empty"
        wooden = results[ODD.index("A girl going into a wooden building .") * 2 + 1]
        assert (
            wooden.status == "ok"
            and "wooden" in (wooden.text or "")
            and wooden.text != "A girl going into a wooden building ."
        )
        again = bt.run(texts, pivot)
        assert all(r.cached for r in again) and [r.text for r in again] == [r.text for r in results]


def test_apertium_alignment_by_index_marks() -> None:
    """Each probe keeps its number after its odd neighbour: nothing shifted."""
    numbers = [str(n) for n in range(101, 111)]
    texts = []
    for n, odd in zip(numbers, ODD):
        texts += [f"I see {n} cats .", odd]
    with ApertiumTranslator() as translator:
        for pivot in ("spa", "cat"):
            out = translator.round_trip(texts, pivot)
            for i, n in enumerate(numbers):
                assert n in out[2 * i].lower(), (pivot, n, out[2 * i])


def test_classify_statuses() -> None:
    p = Protector(["<person>"])
    assert classify("a dog", "", p) == "empty"
    assert classify("a dog .", "a  dog .", p) == "identical"
    assert classify("<person> runs", "the man runs", p) == "lost_token"
    assert classify("<person> runs", "<person> goes running", p) == "ok"
