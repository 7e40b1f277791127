"""Training objectives, one module each, registered by name (`OBJECTIVES`) and weighted in YAML."""

from training.objectives.base import OBJECTIVES, Objective
from training.objectives.clip import clip_loss
from training.objectives.filip import filip_loss

__all__ = ["OBJECTIVES", "Objective", "clip_loss", "filip_loss"]
