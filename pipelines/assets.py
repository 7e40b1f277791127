"""`python -m pipelines assets`: prepare the offline language assets (see `catalog.assets`)."""

from __future__ import annotations

import argparse
from typing import Any

from catalog.assets import AssetMissing, cache_dir, prepare


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    return subparsers.add_parser("assets", help="prepare offline language assets (WordNet copy + lexnames)")


def main(args: argparse.Namespace | None = None) -> int:
    try:
        log = prepare()
    except AssetMissing as exc:
        print(f"assets: FAILED: {exc}")
        return 1
    for line in log:
        print(f"assets: {line}")
    print(f"assets: cache {cache_dir()} ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
