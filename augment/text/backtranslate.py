"""Back-translation views (FILIP §3.2): caption -> pivot language -> English.

Protected tokens travel through the translator as placeholders (see `Protector`). Every
output gets a status; only `ok` outputs become views:
- `ok`: differs from the input and keeps every protected token;
- `identical`: the round trip returned the input (whitespace-insensitive);
- `empty`: nothing came back;
- `lost_token`: a protected token was dropped, duplicated or mangled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from augment.text.protect import Protector
from augment.text.translate.base import Translator
from augment.text.translate.cache import TranslationCache

STATUSES = ("ok", "identical", "empty", "lost_token")


@dataclass(frozen=True)
class BackTranslation:
    text: str | None  # None unless status == "ok"
    status: str
    cached: bool


def classify(source: str, output: str, protector: Protector) -> str:
    if not output.strip():
        return "empty"
    if " ".join(output.split()) == " ".join(source.split()):
        return "identical"
    if protector.count(output) != protector.count(source):
        return "lost_token"
    return "ok"


class BackTranslator:
    """Round trips through `translator`, consulting and filling `cache` when given."""

    def __init__(self, translator: Translator, protector: Protector, cache: TranslationCache | None = None) -> None:
        self.translator = translator
        self.protector = protector
        self.cache = cache

    def run(self, texts: Sequence[str], pivot: str) -> list[BackTranslation]:
        backend = self.translator.identity(pivot)
        cached = self.cache.get_many(backend, pivot, texts) if self.cache else {}
        todo = list(dict.fromkeys(t for t in texts if t not in cached))
        fresh: dict[str, str] = {}
        if todo:
            outputs = self.translator.round_trip([self.protector.to_placeholders(t) for t in todo], pivot)
            fresh = {t: self.protector.from_placeholders(o) for t, o in zip(todo, outputs, strict=True)}
            if self.cache:
                self.cache.put_many(backend, pivot, list(fresh.items()))
        results = []
        for t in texts:
            output = cached[t] if t in cached else fresh[t]
            status = classify(t, output, self.protector)
            results.append(BackTranslation(output if status == "ok" else None, status, t in cached))
        return results
