"""OpenCV photometric operations agree with torchvision's reference ones up to rounding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torchvision.transforms.functional as F
from PIL import Image
from support.augment_fixtures import drawn_jpeg

from augment.image import photometric


def _image() -> Image.Image:
    return Image.open(io.BytesIO(drawn_jpeg(5))).convert("RGB")


@pytest.mark.parametrize(
    "name, factor",
    [
        ("brightness", 1.35),
        ("brightness", 0.62),
        ("contrast", 1.4),
        ("contrast", 0.6),
        ("saturation", 1.38),
        ("saturation", 0.65),
        ("hue", 0.09),
        ("hue", -0.07),
    ],
)
def test_jitter_matches_torchvision_in_float(name: str, factor: float) -> None:
    """Reference: torchvision's operation on a float tensor (no 8-bit rounding on the way)."""
    img = _image()
    ours = photometric.JITTER[name](np.asarray(img), factor).astype(float)
    reference = getattr(F, f"adjust_{name}")(F.pil_to_tensor(img).float() / 255, factor).permute(1, 2, 0).numpy() * 255
    diff = np.abs(ours - reference)
    # brightness/contrast/saturation: rounding only; hue: 8-bit HSV steps (~6 levels on a saturated edge)
    assert diff.mean() < (1.0 if name == "hue" else 0.5) and diff.max() <= (8 if name == "hue" else 1), (
        name,
        factor,
        diff.mean(),
        diff.max(),
    )
    assert np.abs(ours - np.asarray(img)).mean() > 2  # the operation did something


def test_grayscale_is_luma_in_three_channels() -> None:
    img = _image()
    ours = photometric.grayscale(np.asarray(img)).astype(int)
    theirs = np.asarray(img.convert("L")).astype(int)
    assert (ours[..., 0] == ours[..., 1]).all() and (ours[..., 1] == ours[..., 2]).all()
    assert np.abs(ours[..., 0] - theirs).max() <= 1


@pytest.mark.parametrize("sigma", [0.1, 0.7, 2.0])
def test_blur_matches_torchvision_gaussian(sigma: float) -> None:
    img = _image()
    k = 2 * int(np.ceil(3 * sigma)) + 1
    theirs = F.gaussian_blur(F.pil_to_tensor(img), kernel_size=k, sigma=sigma).permute(1, 2, 0).numpy().astype(int)
    ours = photometric.blur(np.asarray(img), sigma).astype(int)
    assert np.abs(ours - theirs).max() <= 1


def test_pure_and_input_untouched() -> None:
    a = np.asarray(_image()).copy()
    before = a.copy()
    for name, fn in photometric.JITTER.items():
        assert np.array_equal(fn(a, 0.3 if name == "hue" else 1.3), fn(a, 0.3 if name == "hue" else 1.3))
    photometric.blur(a, 1.1)
    assert np.array_equal(a, before)
