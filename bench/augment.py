"""Per-core throughput of each view kind, bytes per sample, beside the text filter stage.

    .venv/bin/python bench/augment.py --data /work/shared/realdata/flickr [--n 2000] [--images 300]
        [--parts filter,eda,bt,image] [--repeat 3]

CPU seconds (this process + child processes, e.g. apertium) are the per-core measure: the
machine is shared, so wall time is printed too but not used for the rates.
Targets: EDA >= 2,000 captions/s/core; apertium >= 300 round trips/s/core per pivot;
2 global + 4 local image views (incl. JPEG) >= 100 samples/s/core.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(name: str, n: int, fn: Callable[[], Any], target: float | None = None, unit: str = "captions") -> float:
    c0, t0 = cpu(), time.perf_counter()
    fn()
    c, w = cpu() - c0, time.perf_counter() - t0
    rate = n / c if c else float("inf")
    goal = f"target {target:>7,.0f}  {'OK' if rate >= target else 'BELOW'} ({rate / target:.2f}x)" if target else ""
    print(f"{name:44s} {rate:>9,.0f} {unit}/s/core  (cpu {c:6.2f}s, wall {w:6.2f}s)  {goal}")
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dir with captions_all.tsv and the jpgs")
    ap.add_argument("--n", type=int, default=2000, help="captions")
    ap.add_argument("--images", type=int, default=300, help="images")
    ap.add_argument("--parts", default="filter,eda,bt,image", help="comma-separated subset of filter,eda,bt,image")
    ap.add_argument(
        "--repeat", type=int, default=1, help="measure the bt and image rates this many times (noisy machine)"
    )
    args = ap.parse_args()
    tsv = Path(args.data) / "captions_all.tsv"
    if not tsv.is_file():
        raise SystemExit(f"bench: {tsv} not found (pass --data DIR with captions_all.tsv)")
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()[1:]]
    captions = [r[2] for r in rows][: args.n]
    files = list(dict.fromkeys(r[0] for r in rows))[: args.images]

    parts = set(args.parts.split(","))
    unknown = parts - {"filter", "eda", "bt", "image"}
    if unknown:
        raise SystemExit(f"bench: unknown --parts {sorted(unknown)}; known: filter, eda, bt, image")
    print(f"{len(captions)} captions, {len(files)} images from {args.data}; load average {os.getloadavg()[0]:.2f}\n")
    sizes = {}
    if "filter" in parts:
        bench_filter(captions)
    if "eda" in parts:
        sizes["eda"] = bench_eda(captions)
    if "bt" in parts:
        sizes["bt"] = bench_bt(captions, args.repeat)
    if "image" in parts:
        sizes["jpg"] = bench_image(Path(args.data), files, args.repeat)
    sizes["txt"] = sum(len(c.encode()) for c in captions) / len(captions)
    print("  bytes/sample: " + ", ".join(f"{k} {v:,.0f}" for k, v in sizes.items()))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


def bench_filter(captions: list[str]) -> None:
    """The text filter chain, for scale."""
    try:
        from pipelines.filters.chain import TextChain

        chain = TextChain()
        chain.setup()
        measure(
            "filter stage: TextChain.run (baseline)",
            len(captions),
            lambda: chain.run([{"caption": c, "url": ""} for c in captions]),
        )
    except Exception as exc:  # the chain belongs to another package; report rather than fail
        print(f"filter stage: not measured ({type(exc).__name__}: {exc})")


def bench_eda(captions: list[str]) -> float:
    """EDA operations against nlpaug's; returns bytes per sample of the 2 EDA views."""
    from augment.text.eda import Eda, WordNetSynonyms
    from augment.text.protect import Protector
    from augment.views import view_rng
    from catalog import assets
    from catalog.keys import sample_key

    assets.prepare()  # WordNetSynonyms reads the prepared WordNet copy
    eda = Eda(WordNetSynonyms(), Protector(["<person>"]), {"sr": 0.1, "ri": 0.1, "rs": 0.1, "rd": 0.1})
    eda.apply("warm up the synonym cache", "sr", random.Random(0))
    keys = [sample_key(c + str(i)) for i, c in enumerate(captions)]
    for op in ("sr", "ri", "rs", "rd"):
        measure(
            f"EDA {op} (cold synonym cache)" if op in ("sr", "ri") else f"EDA {op}",
            len(captions),
            lambda op=op: [eda.apply(c, op, view_rng(k, 0, "eda0")) for k, c in zip(keys, captions)],
            2000,
        )
    measure(
        "EDA DeCLIP view (one of sr/rs/rd), warm",
        len(captions),
        lambda: [eda.choose_and_apply(c, ["sr", "rs", "rd"], view_rng(k, 0, "eda1")) for k, c in zip(keys, captions)],
        2000,
    )
    try:
        import nlpaug.augmenter.word as naw

        swap = naw.RandomWordAug(action="swap", aug_p=0.1, stopwords=["<person>"])
        delete = naw.RandomWordAug(action="delete", aug_p=0.1, stopwords=["<person>"])
        measure("  baseline nlpaug RandomWordAug swap", len(captions), lambda: [swap.augment(c) for c in captions])
        measure("  baseline nlpaug RandomWordAug delete", len(captions), lambda: [delete.augment(c) for c in captions])
    except ImportError:
        print("  nlpaug not installed: baseline skipped")
    return (
        sum(len(eda.choose_and_apply(c, ["sr", "rs", "rd"], random.Random(0)).text.encode()) for c in captions)
        * 2
        / len(captions)
    )


def bench_bt(captions: list[str], repeat: int) -> float:
    """Apertium round trips per pivot (CPU of the apertium processes included); returns bytes per sample per pivot."""
    import subprocess

    from augment.config import AugmentConfig
    from augment.text.translate.apertium import ApertiumTranslator, StreamingApertiumPipe

    translator = ApertiumTranslator(batch_size=AugmentConfig().backtranslation.batch_size)
    out: list[str] = []
    for pivot in ("spa", "cat"):
        for _ in range(repeat):
            out = []
            measure(
                f"apertium round trip eng-{pivot}-eng (batched)",
                len(captions),
                lambda pivot=pivot, out=out: out.extend(translator.round_trip(captions, pivot)),
                300,
            )
        same = sum(a == b for a, b in zip(captions, out))
        print(f"  identical to the source: {same} ({100 * same / len(captions):.1f}%)")
    stream = StreamingApertiumPipe(("eng-spa", "spa-eng"))
    measure(
        "  alt: spa chain kept open (-z + stdbuf)",
        len(captions),
        lambda: ([stream.run(captions[i : i + 256]) for i in range(0, len(captions), 256)], stream.close()),
    )
    few = captions[:40]
    measure(
        "  baseline: one `apertium` call per caption",
        len(few),
        lambda: [
            subprocess.run(
                "apertium -u eng-spa | apertium -u spa-eng", shell=True, input=c.encode(), capture_output=True
            )
            for c in few
        ],
    )
    return sum(len(t.encode()) for t in out) / len(captions)


def bench_image(data: Path, files: list[str], repeat: int) -> float:
    """2 global + 4 local views per sample, JPEG decode and encode included; returns source jpg bytes per sample."""
    from augment.config import AugmentConfig
    from augment.views import VIEWS, transform_samples
    from catalog.keys import sample_key

    cfg = AugmentConfig()
    jpgs = [(data / f).read_bytes() for f in files]
    for policy in ("declip", "autoaugment"):
        c2 = cfg.model_copy(update={"image": cfg.image.model_copy(update={"policy": policy})})
        kinds = [VIEWS.get("global")(c2), VIEWS.get("local")(c2)]
        warm = [{"__key__": "warm-up", "jpg": jpgs[0], "txt": "", "json": {}, "members": {}}]
        transform_samples(warm, kinds)  # imports (OpenCV, torchvision) out of the measurement
        for k in kinds:
            k.stats.clear()
        for _ in range(repeat):
            samples = [
                {"__key__": sample_key(f), "jpg": j, "txt": "", "json": {}, "members": {}} for f, j in zip(files, jpgs)
            ]
            measure(
                f"image views 2 global + 4 local ({policy})",
                len(samples),
                lambda samples=samples, kinds=kinds: transform_samples(samples, kinds),
                100,
                "samples",
            )
        if policy == "declip":
            for k in kinds:
                print(f"  {k.name}: {k.stats['bytes'] / k.stats['samples']:,.0f} bytes/sample")
    return sum(map(len, jpgs)) / len(jpgs)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
