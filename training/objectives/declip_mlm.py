"""DeCLIP's text self-supervision: masked language modelling on the paired captions
(DeCLIP §3.3 "Self-Supervision within each modality", Fig. 5(b); appendix B: 15% of the
tokens, 80% [mask] / 10% random / 10% unchanged). Head and loss: `mlm_head`.

DeCLIP's public code masks inside the contrastive pass: the causal tower gives a masked
token only its left context, and the contrastive text feature comes from the masked
caption. Here the masked copy has its own bidirectional pass and CLIP reads the clean one.
"""

from __future__ import annotations

from training.objectives.base import OBJECTIVES
from training.objectives.mlm_head import MaskedLanguageModelling


@OBJECTIVES.register("declip_mlm")
class DeclipMlm(MaskedLanguageModelling):
    modalities = frozenset({"pair"})
