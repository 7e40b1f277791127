"""`python -m pipelines views-text` / `views-image`: look at the views of a few captions or image files."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from augment.config import AugmentConfig
from augment.views import build_kinds, transform_samples
from catalog import assets
from catalog.cli import add_overrides
from catalog.config import apply_overrides, validate
from catalog.keys import sample_key
from pipelines.views.cli import load_augment_config


def add_parser(subparsers: Any) -> None:
    t = subparsers.add_parser(
        "views-text", help="print the EDA and back-translation views of captions (args or stdin lines)"
    )
    t.add_argument("captions", nargs="*", help="captions; none: one per stdin line")
    image = subparsers.add_parser("views-image", help="write the image views of image files into a directory")
    image.add_argument("images", nargs="+")
    image.add_argument("--out", required=True, help="output directory")
    for p in (t, image):
        p.add_argument("--config", default=None, help="YAML with augment keys (default: defaults)")
        add_overrides(p, "eda.views=3")


def _config(args: argparse.Namespace) -> AugmentConfig:
    if args.config:
        return load_augment_config(args.config, args.overrides)[0]
    return validate(AugmentConfig, apply_overrides({}, args.overrides), "<defaults>")


def main(args: argparse.Namespace) -> int:
    cfg = _config(args)
    assets.prepare()  # EDA reads the prepared WordNet copy
    if args.command == "views-text":
        cfg = cfg.model_copy(update={"views": [v for v in cfg.views if v in ("eda", "bt")]})
        captions = args.captions or [line.rstrip("\n") for line in sys.stdin if line.strip()]
        samples = [{"__key__": sample_key(c), "txt": c, "json": {}, "members": {}} for c in captions]
        kinds = build_kinds(cfg)
        for s in transform_samples(samples, kinds):
            print(s["txt"])
            for ext, data in sorted(s["members"].items()):
                if ext.endswith(".txt"):
                    print(f"  {ext:12s} {data.decode('utf-8')}")
            for name, recipe in sorted(s["json"]["views"].items()):
                if recipe.get("status", "ok") != "ok":
                    print(f"  {name:12s} ({recipe['status']})")
        for k in kinds:
            k.close()
        return 0
    cfg = cfg.model_copy(update={"views": [v for v in cfg.views if v in ("global", "local")]})
    os.makedirs(args.out, exist_ok=True)
    kinds = build_kinds(cfg)
    for path in args.images:
        with open(path, "rb") as f:
            sample = {
                "__key__": sample_key(os.path.abspath(path)),
                "jpg": f.read(),
                "txt": "",
                "json": {},
                "members": {},
            }
        transform_samples([sample], kinds)
        stem = os.path.splitext(os.path.basename(path))[0]
        for ext, data in sample["members"].items():
            if ext.endswith(".jpg"):
                with open(os.path.join(args.out, f"{stem}.{ext}"), "wb") as f:
                    f.write(data)
        print(f"{path}: {len([e for e in sample['members'] if e.endswith('.jpg')])} views -> {args.out}")
    return 0
