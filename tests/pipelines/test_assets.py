"""Asset preparation: WordNet copied (not linked) into the cache, lexnames generated."""

from __future__ import annotations

import pytest

from catalog import assets


def test_prepare_copies_wordnet_and_generates_lexnames(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPFORGE_CACHE", str(tmp_path))
    log = assets.prepare()
    root = tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert assets.wordnet_dir() == root
    assert any("14 of 14 files copied" in line for line in log)
    for name in assets.WORDNET_FILES:
        path = root / name
        assert path.is_file() and not path.is_symlink() and path.stat().st_nlink == 1
    lines = (root / "lexnames").read_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[5] == "05\tnoun.animal\t1"
    assert lines[18] == "18\tnoun.person\t1" and lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"
    again = assets.prepare()  # idempotent
    assert any("0 of 14 files copied" in line for line in again) and any("up to date" in line for line in again)
    wn = assets.wordnet()
    assert wn.synsets("dog")[0].lexname() == "noun.animal"
    assert "corgi" in assets.wordnet_common_words() and "lopez" not in assets.wordnet_common_words()


def test_lexnames_parser_rejects_broken_man_page():
    with pytest.raises(ValueError, match="syntactic category table incomplete"):
        assets.parse_lexnames_man_page("00\tadj.all\tall adjective clusters\n")


def test_missing_wordnet_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPFORGE_CACHE", str(tmp_path))
    with pytest.raises(assets.AssetMissing, match="run `make setup`"):
        assets.wordnet()


def test_loaders():
    assert assets.lid_model().predict("a dog runs on the beach", k=1)[0][0] == "__label__en"
    assert len(assets.clip_tokenizer().encoder) == 49408
    assert "the" in assets.stop_words() and len(assets.stop_words()) == 326
    assert assets.apertium_available("eng-spa") and assets.apertium_available("cat-eng")
    assert not assets.apertium_available("eng-xxx")
    with pytest.raises(assets.AssetMissing, match="apt-get install apertium-eng-xxx"):
        assets.require_apertium("eng-xxx")
    nlp = assets.spacy_nlp(("ner",))
    assert nlp.pipe_names == ["ner"] and assets.spacy_nlp(("ner",)) is nlp
    with pytest.raises(ValueError, match="unknown components"):
        assets.spacy_nlp(("parserr",))
