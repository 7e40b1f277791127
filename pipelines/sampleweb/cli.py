"""`python -m pipelines sample-web --out DIR --n N --seed S [--base-url URL] [--rate NAME=FLOAT ...]
[--n-images K] [--n-texts K] [--n-eval K]`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from catalog.config import ConfigError, validate
from pipelines.sampleweb.corpus import generate
from pipelines.sampleweb.mess import Rates, category_names


def parse_rates(items: list[str]) -> Rates:
    """['spanish=0.05', 'slow=0'] -> Rates; errors name the bad item and the allowed names."""
    data: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            data[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--rate {item!r}: expected NAME=FLOAT, e.g. --rate spanish=0.05") from None
    return validate(Rates, data, source="--rate")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sample-web",
        help="generate a sample web corpus (captioned shape images + crawl mess + truth)",
        description="Write DIR/images, DIR/urls.parquet, DIR/truth.parquet, the image-only list "
        "DIR/images.parquet, the text-only list DIR/texts.parquet, the held-out eval list DIR/eval.parquet "
        "(each with its *_truth.parquet) and "
        "DIR/corpus.json; serve them with `serve-web DIR`. Mess categories: " + ", ".join(category_names()),
    )
    p.add_argument("--out", required=True, help="output folder (a previous corpus there is replaced)")
    p.add_argument("--n", type=int, required=True, help="number of rows")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--n-images", type=int, default=None, help="rows of the image-only list images.parquet (default: 30%% of --n)"
    )
    p.add_argument(
        "--n-texts", type=int, default=None, help="rows of the text-only list texts.parquet (default: 30%% of --n)"
    )
    p.add_argument(
        "--n-eval",
        type=int,
        default=0,
        help="rows of the held-out eval list eval.parquet: clean pairs, images under DIR/eval/ (default 0)",
    )
    p.add_argument(
        "--base-url",
        default="http://127.0.0.1:8765",
        help="base of every URL; must match where serve-web will listen (default http://127.0.0.1:8765)",
    )
    p.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="NAME=FLOAT",
        help="share of rows in a mess category (repeatable); 0 turns a category off",
    )
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    try:
        rates = parse_rates(args.rate)
        start = time.perf_counter()
        n_images, n_texts = (unimodal_rows(args.n) if k is None else k for k in (args.n_images, args.n_texts))
        summary = generate(
            args.out,
            args.n,
            args.seed,
            base_url=args.base_url,
            rates=rates,
            n_images=n_images,
            n_texts=n_texts,
            n_eval=args.n_eval,
        )
    except (ConfigError, ValueError, RuntimeError) as exc:
        print(f"sample-web: {exc}", file=sys.stderr)
        return 2
    fates = ", ".join(f"{k} {v}" for k, v in sorted(summary["fates"].items(), key=lambda kv: -kv[1]))
    print(
        f"wrote {summary['n']} rows to {args.out} in {time.perf_counter() - start:.1f}s "
        f"(URLs under {summary['base_url']})"
    )
    print(f"fates: {fates}")
    print(
        f"image-only list: {summary['images']['n']} rows (images.parquet); "
        f"text-only list: {summary['texts']['n']} rows (texts.parquet); "
        f"eval list: {summary['eval']['n']} rows (eval.parquet)"
    )
    return 0


def unimodal_rows(n: int) -> int:
    """The default size of each unimodal list: 30% of the paired rows (600 for the demo's 2,000)."""
    return round(0.3 * n)
