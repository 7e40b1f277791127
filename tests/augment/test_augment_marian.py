"""Marian back-translation plumbing with a tiny randomly initialised model saved locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.text.backtranslate import BackTranslator
from augment.text.protect import Protector
from augment.text.translate import TRANSLATORS
from augment.text.translate.cache import TranslationCache

SENTENCES = [
    "a dog runs on the beach",
    "two children play in the park",
    "a man rides a horse",
    "ein hund läuft am strand",
    "zwei kinder spielen im park",
    "ein mann reitet ein pferd",
] * 20


def tiny_marian(directory: Path) -> str:
    """Train a 40-piece SentencePiece model offline and save a 1-layer random MarianMT next to it."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(directory / "spm"),
        vocab_size=40,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=1,
        unk_id=2,
        pad_id=0,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(directory / "spm.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{k: v for k, v in vocab.items() if v > 2}}
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (directory / name).write_bytes((directory / "spm.model").read_bytes())
    tok = MarianTokenizer(
        vocab=str(directory / "vocab.json"),
        source_spm=str(directory / "source.spm"),
        target_spm=str(directory / "target.spm"),
        source_lang="en",
        target_lang="de",
    )
    torch.manual_seed(0)
    cfg = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
    )
    MarianMTModel(cfg).save_pretrained(directory / "model")
    tok.save_pretrained(directory / "model")
    return str(directory / "model")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tiny_marian(tmp_path_factory.mktemp("marian"))


def test_marian_translate_and_round_trip_plumbing(model_dir: str, tmp_path: Path) -> None:
    translator = TRANSLATORS.get("marian")(
        models={"eng-deu": model_dir, "deu-eng": model_dir}, batch_size=2, max_new_tokens=8
    )
    texts = ["a dog runs on the beach", "a man rides a horse", "two children play"]
    out = translator.translate(texts, "eng", "deu")
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert translator.translate(texts, "eng", "deu") == out  # greedy: deterministic
    cache = TranslationCache(tmp_path)
    bt = BackTranslator(translator, Protector(["<person>"]), cache)
    results = bt.run(texts + ["<person> plays"], "deu")
    assert [r.status for r in results][3] in ("lost_token", "empty")  # a random model cannot keep the token
    assert all(r.status in ("ok", "identical", "empty", "lost_token") for r in results)
    assert cache.count() == 4
    assert all(r.cached for r in bt.run(texts, "deu"))
    assert translator.identity("deu") == f"marian:{model_dir}|{model_dir}"
    with pytest.raises(KeyError, match="marian_models.eng-rus"):
        translator.translate(texts, "eng", "rus")
