"""View kinds, one module each, registered by name and selected in YAML (`augment.views: [global, local, eda, bt]`).

| kind | module | members | recipe |
|---|---|---|---|
| `global` | `global_.py` | `g0.jpg`, `g1.jpg` | crop box, flip, jitter values/order, grayscale, blur sigma (or AutoAugment ops) |
| `local` | `local.py` | `l0.jpg` … `l{K-1}.jpg` | same, 96 px crops of scale (0.05, 0.4) |
| `eda` | `eda.py` | `eda0.txt`, `eda1.txt` | EDA operation and number of words changed |
| `bt` | `bt.py` | `bt.<pivot>.txt` | backend, status (`ok`/`identical`/`empty`/`lost_token`), cached; member only when `ok` |

The contract (`augment.views.base`): a `ViewKind` subclass with class attributes `name` and
`modality`, the classmethod `members(cfg)` (member names it writes under a config) and
`make(samples)`; `declared_views(cfg)` collects the members by modality for the manifest.
"""

import importlib
import pkgutil

from augment.views.base import (
    MODALITIES,
    VIEWS,
    Sample,
    ViewKind,
    build_kinds,
    declared_views,
    encode_jpeg,
    source_image,
    transform_samples,
    view_rng,
)

for _module in pkgutil.iter_modules(__path__):  # every module of the package registers its view kind
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "MODALITIES",
    "VIEWS",
    "Sample",
    "ViewKind",
    "build_kinds",
    "declared_views",
    "encode_jpeg",
    "source_image",
    "transform_samples",
    "view_rng",
]
