"""The view contract: each kind declares its members (by modality) and writes exactly those."""

from __future__ import annotations

import pytest
from support.augment_fixtures import CAPTIONS, drawn_jpeg

from augment.config import AugmentConfig
from augment.views import MODALITIES, VIEWS, build_kinds, declared_views, transform_samples
from catalog import assets


def test_every_kind_is_one_module_with_a_name_and_modality() -> None:
    assert VIEWS.names() == ["bt", "eda", "global", "local"]
    for name in VIEWS.names():
        kind = VIEWS.get(name)
        assert kind.name == name and kind.modality in MODALITIES
        assert kind.__module__.startswith("augment.views.") and kind.__module__ != "augment.views.base"


def test_declared_views_follow_the_config() -> None:
    cfg = AugmentConfig(
        image={"local_views": {"count": 3, "size": 96, "scale": (0.05, 0.4)}},
        eda={"views": 1},
        backtranslation={"pivots": ["spa"]},
    )
    assert declared_views(cfg) == {
        "image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg", "l2.jpg"],
        "text": ["bt.spa.txt", "eda0.txt"],
    }
    assert declared_views(AugmentConfig(views=["eda"])) == {"image": [], "text": ["eda0.txt", "eda1.txt"]}


@pytest.mark.parametrize("views", [["global", "local"], ["eda"]])
def test_kinds_write_only_declared_members(views: list[str]) -> None:
    assets.prepare()
    cfg = AugmentConfig(views=views)
    samples = [
        {
            "__key__": f"k{i}",
            "jpg": drawn_jpeg(i),
            "txt": CAPTIONS[i],
            "json": {"url": str(i)},
            "members": {"jpg": drawn_jpeg(i), "txt": CAPTIONS[i].encode(), "json": b"{}"},
        }
        for i in range(3)
    ]
    kinds = build_kinds(cfg)
    declared = {m for names in declared_views(cfg).values() for m in names}
    for s in transform_samples(samples, kinds):
        assert set(s["members"]) - {"jpg", "txt", "json"} == declared
        assert list(s["members"])[:3] == ["jpg", "txt", "json"]  # views follow the sample's own members
    for k in kinds:
        k.close()
