"""`eda`: EDA text views `eda0.txt`, `eda1.txt` (Wei & Zou 2019, as in DeCLIP appendix B).

Members: `eda{i}.txt` for i < `eda.views`. Each view applies one operation drawn from
`eda.ops`; recipe: the operation and the number of words changed.
"""

from __future__ import annotations

from augment.config import AugmentConfig
from augment.text.eda import Eda, WordNetSynonyms
from augment.text.protect import Protector
from augment.views.base import VIEWS, Made, Sample, ViewKind, view_rng


@VIEWS.register("eda")
class EdaViews(ViewKind):
    """EDA text views; each applies one operation drawn from `eda.ops` (DeCLIP appendix B).

    Needs the prepared WordNet copy (`catalog.assets.prepare()`, which the augment job runs
    on each worker before building view kinds).
    """

    name = "eda"
    modality = "text"

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__(cfg)
        e = cfg.eda
        self.eda = Eda(
            WordNetSynonyms(),
            Protector(cfg.protected_tokens),
            {"sr": e.alpha_sr, "ri": e.alpha_ri, "rs": e.alpha_rs, "rd": e.alpha_rd},
        )

    @classmethod
    def names(cls, cfg: AugmentConfig) -> list[str]:
        return [f"eda{i}" for i in range(cfg.eda.views)]

    @classmethod
    def members(cls, cfg: AugmentConfig) -> list[str]:
        return [f"{n}.txt" for n in cls.names(cfg)]

    def make(self, samples: list[Sample]) -> Made:
        out = []
        for sample in samples:
            members, recipes = {}, {}
            for name in self.names(self.cfg):
                result = self.eda.choose_and_apply(
                    sample["txt"], self.cfg.eda.ops, view_rng(sample["__key__"], self.cfg.seed, name)
                )
                members[f"{name}.txt"] = result.text.encode("utf-8")
                recipes[name] = {"op": result.op, "changed": result.changed}
                self.stats[f"op_{result.op}"] += 1
            self._count(members)
            out.append((members, recipes))
        return out
