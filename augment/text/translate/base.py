"""The translator contract: batched `translate(texts, src, tgt)` with ISO 639-3 codes (eng, spa)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.registry import Registry


class Translator:
    """Translates batches; one instance per worker holds its models or processes open."""

    name: str = "translator"

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        """One output per input, in order."""
        raise NotImplementedError

    def round_trip(self, texts: Sequence[str], pivot: str, src: str = "eng") -> list[str]:
        """src -> pivot -> src. Backends that can chain both directions in one pass override this."""
        return self.translate(self.translate(texts, src, pivot), pivot, src)

    def identity(self, pivot: str) -> str:
        """What identifies the output for `pivot` (cache key part): backend plus model/version."""
        return self.name

    def close(self) -> None:
        """Release processes or models."""

    def __enter__(self) -> Translator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


TRANSLATORS: Registry[type[Translator]] = Registry("translator")
