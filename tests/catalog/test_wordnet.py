"""catalog.wordnet: the lemma index and morphology answer as NLTK's WordNet reader does, for every word.

Compared on the prepared copy over every index lemma, every exception-list form, every
wordfreq English word and a few hundred non-English and made-up words, in every part of
speech; and `has_sense` against `bool(synsets(word, pos))`, which is what the single_pos
check used to ask NLTK.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from catalog import assets
from catalog.wordnet import POS_LIST, WordNetIndex


@pytest.fixture(scope="module")
def both():
    return assets.wordnet_index(), assets.wordnet()


@pytest.fixture(scope="module")
def words(both):
    index, nltk_wn = both
    exception_forms = {form for pos in POS_LIST for form in nltk_wn._exception_map[pos]}
    extra = {
        "geese", "chicos", "running", "happier", "fastest", "wolves", "churches", "abaci", "ies", "s", "",
        "niñas", "perros", "gatos", "hund", "häuser", "leute", "maisons", "chiens", "ragazzi", "xyzzies",
    }  # fmt: skip
    return sorted(set(index.lemmas()) | exception_forms | assets.wordfreq_english_words() | extra)


def test_lemmas_are_nltks(both):
    index, nltk_wn = both
    assert index.lemmas() == frozenset(nltk_wn.all_lemma_names())
    assert len(index.lemmas()) > 140_000


def test_morphy_and_base_forms_equal_nltks_on_every_word(both, words):
    index, nltk_wn = both
    assert len(words) > 180_000
    for pos in POS_LIST:
        differ = [w for w in words if index.base_forms(w, pos) != nltk_wn._morphy(w, pos)]
        assert differ == [], (pos, differ[:10])
    differ = [w for w in words if index.morphy(w) != nltk_wn.morphy(w)]
    assert differ == [], differ[:10]
    assert index.morphy("geese") == "goose" and index.morphy("wolves", "n") == "wolf" and index.morphy("perros") is None


def test_has_sense_equals_nltk_synsets(both, words):
    index, nltk_wn = both
    sample = words[::7] + ["Dogs", "GEESE", "Happier"]
    for pos in ("n", "a"):
        differ = [w for w in sample if index.has_sense(w, pos) != bool(nltk_wn.synsets(w, pos=pos))]
        assert differ == [], (pos, differ[:10])


def test_a_broken_index_line_names_file_and_line(tmp_path):
    root = assets.wordnet_dir()
    for name in ("index.noun", "index.verb", "index.adj", "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc"):
        (tmp_path / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    with open(tmp_path / "index.verb", "a", encoding="utf-8") as fp:
        fp.write("brokenline\n")
    lines = (tmp_path / "index.verb").read_text(encoding="utf-8").count("\n")
    with pytest.raises(ValueError, match=rf"index\.verb, line {lines}: expected 'lemma v \.\.\.'"):
        WordNetIndex(tmp_path)


def test_the_text_checks_start_without_nltk_or_torch():
    """A text actor's set-up (every check of the default chain) imports neither NLTK nor torch."""
    code = (
        "import sys\n"
        "from pipelines.filters.chain import TextChain\n"
        "from pipelines.filters.config import FilterConfig\n"
        "TextChain(FilterConfig()).setup()\n"
        "print(sorted(m for m in ('nltk', 'torch', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
