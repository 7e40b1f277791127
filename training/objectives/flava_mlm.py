"""FLAVA's masked language modelling on text-only batches (FLAVA supplement A.1/A.2, B.1
"Language encoder pretraining"): the same masking (`functional.mask_tokens`) and head
(`mlm_head`) as `declip_mlm`, run on the batches of a text-only source of the mixture.
"""

from __future__ import annotations

from training.objectives.base import OBJECTIVES
from training.objectives.mlm_head import MaskedLanguageModelling


@OBJECTIVES.register("flava_mlm")
class FlavaMlm(MaskedLanguageModelling):
    modalities = frozenset({"text"})
