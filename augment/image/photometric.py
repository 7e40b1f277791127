"""DeCLIP's photometric operations (appendix B) on uint8 RGB arrays, with OpenCV.

The operations of torchvision's `ColorJitter`, `RandomGrayscale` and the MoCo v2 / SimSiam
Gaussian blur, run on the already-resized crop with OpenCV's vectorised code, 5-10x faster
than the PIL paths for hue (PIL's HSV conversions) and blur. Values are rounded (PIL's
blends truncate), the hue step is rounded to 1/256 turn (torchvision truncates to 1/255),
so each result is within rounding of torchvision's exact float operation, at least as
close as the PIL path (tests/test_augment_photometric.py); the blur is a true Gaussian
(torchvision's tensor `gaussian_blur`) rather than PIL's 3-pass box approximation.
Each function is pure: same array and factor, same output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

Array = np.ndarray


@functools.cache
def _cv2() -> Any:
    """OpenCV, single-threaded: one augment worker per core, and crops are too small to split."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def _affine(a: Array, scale: float, offset: float) -> Array:
    """round(scale * a + offset), clipped to [0, 255], through a 256-entry table."""
    table = np.clip(np.rint(np.arange(256, dtype=np.float64) * scale + offset), 0, 255).astype(np.uint8)
    return _cv2().LUT(a, table)


def gray(a: Array) -> Array:
    """ITU-R 601-2 luma (as PIL's "L" and torchvision's rgb_to_grayscale), one channel."""
    cv2 = _cv2()
    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)


def brightness(a: Array, factor: float) -> Array:
    """Blend with black (torchvision `adjust_brightness`)."""
    return _affine(a, factor, 0.0)


def contrast(a: Array, factor: float) -> Array:
    """Blend with the mean grey level (torchvision `adjust_contrast`)."""
    return _affine(a, factor, (1.0 - factor) * float(gray(a).mean()))


def saturation(a: Array, factor: float) -> Array:
    """Blend with the grey-scale image (torchvision `adjust_saturation`)."""
    cv2 = _cv2()
    return cv2.addWeighted(a, factor, cv2.cvtColor(gray(a), cv2.COLOR_GRAY2RGB), 1.0 - factor, 0.0)


def hue(a: Array, factor: float) -> Array:
    """Rotate hue by `factor` turns in 8-bit HSV (as torchvision's PIL `adjust_hue`), S and V kept."""
    cv2 = _cv2()
    hsv = cv2.cvtColor(a, cv2.COLOR_RGB2HSV_FULL)  # hue: 256 steps a full turn
    h = hsv[..., 0]
    np.add(h, np.uint8(round(factor * 256) % 256), out=h)  # uint8 wraps around the colour circle
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def grayscale(a: Array) -> Array:
    """Grey-scale kept as 3 channels (torchvision `RandomGrayscale`)."""
    cv2 = _cv2()
    return cv2.cvtColor(gray(a), cv2.COLOR_GRAY2RGB)


def blur(a: Array, sigma: float) -> Array:
    """Gaussian blur of standard deviation `sigma`, kernel cut at 3 sigma, reflected borders."""
    cv2 = _cv2()
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(a, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


JITTER: dict[str, Callable[[Array, float], Array]] = {
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "hue": hue,
}
