"""Training objectives, one module each, registered by name (`OBJECTIVES`) and weighted in YAML.

The contract is in `training.objectives.base`. This package imports only torch, the
standard library, pydantic and its own modules (no other lipforge package).
"""

import importlib
import pkgutil

from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions, mask_key
from training.objectives.clip import clip_loss
from training.objectives.filip import filip_loss
from training.objectives.flava_contrastive import flava_contrastive_loss
from training.objectives.functional import block_mask, info_nce, mask_tokens, mlm_loss, simsiam_loss
from training.objectives.gather import all_gather_no_grad, all_gather_with_grad, gather_sizes, global_offset
from training.objectives.queue import FeatureQueue
from training.objectives.simla_functional import distill_alpha, momentum_update, psl_targets, sample_itm_negatives

for _module in pkgutil.iter_modules(__path__):  # every module of the package registers its objective
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "OBJECTIVES",
    "FeatureQueue",
    "ModelInfo",
    "Objective",
    "ObjectiveOptions",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "block_mask",
    "clip_loss",
    "distill_alpha",
    "filip_loss",
    "flava_contrastive_loss",
    "gather_sizes",
    "global_offset",
    "info_nce",
    "mask_key",
    "mask_tokens",
    "mlm_loss",
    "momentum_update",
    "psl_targets",
    "sample_itm_negatives",
    "simsiam_loss",
]
