"""Image views: sizes, determinism, recorded recipes regenerate identical views."""

from __future__ import annotations

import io

from PIL import Image
from support.augment_fixtures import drawn_jpeg

from augment.config import AugmentConfig
from augment.image.recipes import apply_recipe
from augment.views import build_kinds, encode_jpeg, transform_samples


def _views(cfg: AugmentConfig, key: str, jpg: bytes) -> dict:
    sample = {"__key__": key, "jpg": jpg, "txt": "x", "json": {}, "members": {}}
    return transform_samples([sample], build_kinds(cfg))[0]


def test_sizes_and_counts() -> None:
    cfg = AugmentConfig(
        views=["global", "local"], image={"local_views": {"count": 3, "size": 96, "scale": (0.05, 0.4)}}
    )
    s = _views(cfg, "k", drawn_jpeg(1))
    assert sorted(e for e in s["members"] if e.endswith(".jpg") and e != "jpg") == [
        "g0.jpg",
        "g1.jpg",
        "l0.jpg",
        "l1.jpg",
        "l2.jpg",
    ]
    for ext, side in (("g0.jpg", 224), ("g1.jpg", 224), ("l0.jpg", 96), ("l2.jpg", 96)):
        assert Image.open(io.BytesIO(s["members"][ext])).size == (side, side)
    for name in ("g0", "l1"):
        assert set(s["json"]["views"][name]) == {"policy", "box", "size", "flip", "jitter", "grayscale", "blur"}


def test_deterministic_per_key_seed_and_view() -> None:
    cfg = AugmentConfig(views=["global", "local"])
    jpg = drawn_jpeg(2)
    a, b = _views(cfg, "k1", jpg), _views(cfg, "k1", jpg)
    assert a["members"] == b["members"] and a["json"] == b["json"]
    c = _views(cfg, "k2", jpg)
    assert c["json"]["views"]["g0"] != a["json"]["views"]["g0"]
    d = _views(cfg.model_copy(update={"seed": 7}), "k1", jpg)
    assert d["json"]["views"]["g0"] != a["json"]["views"]["g0"]
    assert a["json"]["views"]["g0"] != a["json"]["views"]["g1"]


def test_recorded_recipe_regenerates_identical_view() -> None:
    for policy in ("declip", "autoaugment"):
        cfg = AugmentConfig(views=["global", "local"], image={"policy": policy})
        jpg = drawn_jpeg(3)
        s = _views(cfg, "key-3", jpg)
        source = Image.open(io.BytesIO(jpg)).convert("RGB")
        for name in ("g0", "g1", "l0", "l3"):
            recipe = s["json"]["views"][name]
            assert recipe["policy"] == (policy if name.startswith("g") else "declip")
            again = encode_jpeg(apply_recipe(source, recipe), cfg.image.jpeg_quality)
            assert again == s["members"][f"{name}.jpg"], (policy, name)


def test_crop_boxes_follow_configured_scale() -> None:
    cfg = AugmentConfig(views=["local"], image={"local_views": {"count": 40, "size": 96, "scale": (0.05, 0.4)}})
    s = _views(cfg, "scale", drawn_jpeg(4))
    for i in range(40):
        left, top, w, h = s["json"]["views"][f"l{i}"]["box"]
        assert 0.04 <= (w * h) / (320 * 256) <= 0.41 and left + w <= 320 and top + h <= 256
