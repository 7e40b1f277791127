"""AutoAugment (Cubuk et al. 2019), ImageNet policy, as FILIP uses it (§3.2), with recorded draws.

The policy table, magnitude bins and operations are torchvision's (`AutoAugment`); only the
random draws are made here, from the view's own generator, so they can be recorded.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from PIL import Image

NUM_BINS = 10


@functools.cache
def _policy() -> list[Any]:
    from torchvision.transforms import AutoAugment, AutoAugmentPolicy

    return AutoAugment(AutoAugmentPolicy.IMAGENET).policies


def sample_subpolicy(rng: random.Random) -> list[list[Any]]:
    """One sub-policy: [[op name, magnitude bin or None, negate]] for each op that fires."""
    policies = _policy()
    sub = policies[rng.randrange(len(policies))]
    ops = []
    for name, p, magnitude_id in sub:
        if rng.random() <= p:
            ops.append([name, magnitude_id, rng.random() < 0.5])
    return ops


def apply_ops(image: Image.Image, ops: list[list[Any]]) -> Image.Image:
    from torchvision.transforms import AutoAugment, InterpolationMode
    from torchvision.transforms.autoaugment import _apply_op

    space = AutoAugment()._augmentation_space(NUM_BINS, (image.height, image.width))
    for name, magnitude_id, negate in ops:
        magnitudes, signed = space[name]
        magnitude = float(magnitudes[magnitude_id].item()) if magnitudes.ndim > 0 and magnitude_id is not None else 0.0
        if signed and negate:
            magnitude = -magnitude
        image = _apply_op(image, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
    return image
