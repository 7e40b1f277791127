"""Image view recipes: sample the random parameters once, then apply them deterministically.

A recipe is plain JSON (stored in the sample's json under `views`), so re-applying a
recorded recipe to the same source image regenerates the identical view (with the same
code version: the photometric operations live in `augment.image.photometric`).

Policy `declip` (DeCLIP appendix B): RandomResizedCrop, ColorJitter (0.4, 0.4, 0.4, 0.1)
with p=0.8 in random order, grayscale p=0.2, Gaussian blur sigma in [0.1, 2] (p from config,
0.5 as in MoCo v2 / SimSiam, which DeCLIP's image SS follows), horizontal flip.
Policy `autoaugment` (FILIP §3.2): RandomResizedCrop, flip, then one sub-policy of
torchvision's ImageNet AutoAugment policy, its operations and magnitudes recorded.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from PIL import Image

from augment.config import CropConfig, PhotometricConfig

Recipe = dict[str, Any]


def sample_crop(rng: random.Random, width: int, height: int, crop: CropConfig) -> list[int]:
    """[left, top, w, h] as torchvision's RandomResizedCrop.get_params draws it (10 tries, then centre)."""
    area = width * height
    log_lo, log_hi = math.log(crop.ratio[0]), math.log(crop.ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*crop.scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return [rng.randint(0, width - w), rng.randint(0, height - h), w, h]
    in_ratio = width / height
    if in_ratio < crop.ratio[0]:
        w, h = width, int(round(width / crop.ratio[0]))
    elif in_ratio > crop.ratio[1]:
        h, w = height, int(round(height * crop.ratio[1]))
    else:
        w, h = width, height
    return [(width - w) // 2, (height - h) // 2, w, h]


def sample_declip(rng: random.Random, width: int, height: int, crop: CropConfig, photo: PhotometricConfig) -> Recipe:
    recipe: Recipe = {"policy": "declip", "box": sample_crop(rng, width, height, crop), "size": crop.size}
    recipe["flip"] = rng.random() < photo.flip_p
    jitter = None
    if rng.random() < photo.jitter_p:
        b, c, s, h = photo.jitter
        order = ["brightness", "contrast", "saturation", "hue"]
        rng.shuffle(order)
        jitter = {
            "order": order,
            "brightness": rng.uniform(max(0.0, 1 - b), 1 + b),
            "contrast": rng.uniform(max(0.0, 1 - c), 1 + c),
            "saturation": rng.uniform(max(0.0, 1 - s), 1 + s),
            "hue": rng.uniform(-h, h),
        }
    recipe["jitter"] = jitter
    recipe["grayscale"] = rng.random() < photo.grayscale_p
    recipe["blur"] = rng.uniform(*photo.blur_sigma) if rng.random() < photo.blur_p else None
    return recipe


def sample_autoaugment(
    rng: random.Random, width: int, height: int, crop: CropConfig, photo: PhotometricConfig
) -> Recipe:
    from augment.image.autoaugment import sample_subpolicy

    return {
        "policy": "autoaugment",
        "box": sample_crop(rng, width, height, crop),
        "size": crop.size,
        "flip": rng.random() < photo.flip_p,
        "ops": sample_subpolicy(rng),
    }


SAMPLERS = {"declip": sample_declip, "autoaugment": sample_autoaugment}


def crop_resize(image: Image.Image, box: list[int], size: int) -> Image.Image:
    left, top, w, h = box
    return image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h), reducing_gap=3.0)


def apply_recipe(image: Image.Image, recipe: Recipe) -> Image.Image:
    """The view described by `recipe`, from the RGB source image.

    Crop and resize first, so the photometric operations run on the small crop only.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = crop_resize(image, recipe["box"], recipe["size"])
    if recipe["flip"]:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if recipe["policy"] == "autoaugment":
        from augment.image.autoaugment import apply_ops

        return apply_ops(out, recipe["ops"])
    from augment.image import photometric

    pixels = np.asarray(out)
    jitter = recipe.get("jitter")
    if jitter:
        for name in jitter["order"]:
            pixels = photometric.JITTER[name](pixels, jitter[name])
    if recipe["grayscale"]:
        pixels = photometric.grayscale(pixels)
    if recipe["blur"] is not None:
        pixels = photometric.blur(pixels, recipe["blur"])
    return Image.fromarray(pixels, "RGB")
