"""MarianMT (transformers) translator, e.g. Helsinki-NLP opus-mt models (FILIP pivots: deu, rus).

`models` maps a direction "SRC-TGT" (ISO 639-3) to a local model directory or a hub name:

    backtranslation:
      backend: marian
      pivots: [deu, rus]
      marian_models:
        eng-deu: /models/opus-mt-en-de      # or Helsinki-NLP/opus-mt-en-de where a network allows
        deu-eng: /models/opus-mt-de-en
        eng-rus: /models/opus-mt-en-ru
        rus-eng: /models/opus-mt-ru-en

Fetch real weights on a machine with network access (`huggingface-cli download
Helsinki-NLP/opus-mt-en-de --local-dir /models/opus-mt-en-de`) and point the config at the
directories; nothing here downloads unless a hub name is configured. Models load lazily,
once per worker, and generate greedily (deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from augment.text.translate.base import TRANSLATORS, Translator


@TRANSLATORS.register("marian")
class MarianTranslator(Translator):
    name = "marian"

    def __init__(
        self,
        models: dict[str, str] | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        max_new_tokens: int = 96,
        **_: object,
    ) -> None:
        self.models = dict(models or {})
        self.batch_size = batch_size
        self.device = device
        self.max_new_tokens = max_new_tokens
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def _direction(self, src: str, tgt: str) -> str:
        direction = f"{src}-{tgt}"
        if direction not in self.models:
            raise KeyError(
                f"marian: no model for {direction!r}; configure backtranslation.marian_models.{direction} "
                f"(have: {', '.join(sorted(self.models)) or 'none'})"
            )
        return direction

    def _load(self, direction: str) -> tuple[Any, Any]:
        if direction not in self._loaded:
            from transformers import MarianMTModel, MarianTokenizer

            where = self.models[direction]
            tokenizer = MarianTokenizer.from_pretrained(where)
            model = MarianMTModel.from_pretrained(where).to(self.device).eval()
            self._loaded[direction] = (tokenizer, model)
        return self._loaded[direction]

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        import torch

        tokenizer, model = self._load(self._direction(src, tgt))
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True).to(self.device)
            with torch.inference_mode():
                ids = model.generate(**enc, max_new_tokens=self.max_new_tokens, num_beams=1, do_sample=False)
            out.extend(tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    def identity(self, pivot: str) -> str:
        return f"marian:{self.models.get(f'eng-{pivot}', '?')}|{self.models.get(f'{pivot}-eng', '?')}"

    def close(self) -> None:
        self._loaded.clear()
