"""The derived name and word lexicons (`catalog.assets`): contents, headers, loaders."""

from __future__ import annotations

import shutil

import pytest

from catalog import assets


@pytest.fixture(scope="module", autouse=True)
def prepared():
    assets.prepare()


def test_name_lexicon_combines_both_sources():
    names = assets.name_lexicon()
    assert 100_000 < len(names) < 400_000
    maria = names.get("maria")
    assert maria.gg >= 10 and maria.gg_en > 0 and maria.first_rank == 1
    smith = names.get("smith")
    assert smith.last_rank == 1 and smith.last_cc in ("GB", "US", "JM", "CA")
    assert names.get("tan").gg > 0 and names.get("tan").gg_en == 0  # a name in Asia, a word in English
    assert names.get("yorkie") is None and names.get("mouse") is None  # beyond the rank cut-off / absent
    assert names.get("anna-lena") is not None and "anna-lena" in names
    assert names.get("no such name") is None


def test_word_lexicons():
    english = assets.wordfreq_english_words()
    foreign = assets.wordfreq_foreign_frequent_words()
    assert {"selfie", "waterskiing", "atvs", "wetsuit"} <= english
    assert not {"playa", "hund", "und"} & english
    assert {"de", "la", "und", "het", "un"} <= foreign and not {"the", "and", "dog"} & foreign


def test_wordnet_proper_names():
    proper = assets.wordnet_proper_names()
    assert "gandhi" in proper.person and "mohawk" not in proper.person and "schulz" in proper.person
    assert "santa_claus" in proper.fictional and "robin_hood" in proper.fictional
    assert {"mickey_mouse", "union_jack", "boston_terrier"} <= proper.things
    assert {"german", "irish"} <= proper.proper_adjectives and "america" in proper.places


def test_stale_or_missing_lexicon_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPFORGE_CACHE", str(tmp_path))
    with pytest.raises(assets.AssetMissing, match=r"names\.tsv not found; run `make setup`"):
        assets.name_lexicon()
    target = assets.lexicon_dir()
    target.mkdir(parents=True)
    src = assets.REPO_ROOT / ".cache" / "lipforge" / "lexicons" / "english-wordfreq.txt"
    if not src.is_file():
        pytest.skip("the default cache is not prepared")
    shutil.copy(src, target / "english-wordfreq.txt")
    assert "selfie" in assets.wordfreq_english_words()
    lines = (target / "english-wordfreq.txt").read_text().splitlines()
    (target / "english-wordfreq.txt").write_text("\n".join([lines[0].replace("min_zipf=", "min_zipf=9"), *lines[1:]]))
    with pytest.raises(assets.AssetMissing, match="other package versions or cut-offs"):
        assets.wordfreq_english_words()
    assert assets.lexicon_header("names").startswith("# lipforge names lexicon v1 names-dataset==3.3.1")
