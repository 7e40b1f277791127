"""`bt`: back-translation views `bt.<pivot>.txt` (FILIP §3.2), e.g. `bt.spa.txt`, `bt.cat.txt`.

Members: `bt.{pivot}.txt` per pivot in `backtranslation.pivots`, present in a sample only
when its round trip is `ok`. Recipe: backend identity, status (`ok`/`identical`/`empty`/
`lost_token`), whether it came from the translation cache.
"""

from __future__ import annotations

from augment.config import AugmentConfig
from augment.text.backtranslate import BackTranslator
from augment.text.protect import Protector
from augment.text.translate import TRANSLATORS
from augment.text.translate.cache import TranslationCache
from augment.views.base import VIEWS, Made, Sample, ViewKind


@VIEWS.register("bt")
class BackTranslationViews(ViewKind):
    """Back-translation through each pivot (FILIP §3.2); identical/empty/lost outputs are not views."""

    name = "bt"
    modality = "text"

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__(cfg)
        bt = cfg.backtranslation
        translator = TRANSLATORS.get(bt.backend)(
            batch_size=bt.batch_size,
            models=bt.marian_models,
            device=bt.marian_device,
            max_new_tokens=bt.marian_max_new_tokens,
        )
        cache = TranslationCache(bt.cache_dir) if bt.use_cache else None
        self.bt = BackTranslator(translator, Protector(cfg.protected_tokens), cache)

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        return [f"bt.{p}.txt" for p in cfg.backtranslation.pivots]

    def make(self, samples: list[Sample]) -> Made:
        out: Made = [({}, {}) for _ in samples]
        texts = [s["txt"] for s in samples]
        for pivot in self.cfg.backtranslation.pivots:
            backend = self.bt.translator.identity(pivot)
            for (members, recipes), result in zip(out, self.bt.run(texts, pivot)):
                recipes[f"bt.{pivot}"] = {"backend": backend, "status": result.status, "cached": result.cached}
                self.stats[result.status] += 1
                self.stats["cached"] += result.cached
                if result.text is not None:
                    members[f"bt.{pivot}.txt"] = result.text.encode("utf-8")
        for members, _ in out:
            self._count(members)
        return out

    def close(self) -> None:
        self.bt.translator.close()
        if self.bt.cache:
            self.bt.cache.close()
