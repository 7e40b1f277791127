"""Training objectives, one module each, registered by name (`OBJECTIVES`) and weighted in YAML.

The contract is in `training.objectives.base`. This package imports only torch, the
standard library, pydantic and its own modules (no other lipforge package).
"""

import importlib
import pkgutil

from training.objectives.base import OBJECTIVES, Objective, ObjectiveOptions, mask_key
from training.objectives.clip import clip_loss
from training.objectives.filip import filip_loss

for _module in pkgutil.iter_modules(__path__):  # every module of the package registers its objective
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OBJECTIVES", "Objective", "ObjectiveOptions", "clip_loss", "filip_loss", "mask_key"]
