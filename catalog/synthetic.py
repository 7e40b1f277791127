"""Small but real dataset versions for catalog tests, benchmarks and demos.

Writes genuine WebDataset shards (PIL JPEGs, captions, sample json, image and text views,
members named per docs/formats.md) and publishes them with `catalog.publish`, so
everything the catalog reads is what a real build writes. It does not imitate the
pipeline's decisions: the funnel it records is made up from the requested reject counts.
With `rejects_sample=True` it also writes the rejects sample a build writes
(`rejects_sample.parquet`, made up to match that funnel by `catalog.synthetic_rejects`) and
the source table its rows came from, whose raw captions carry `person_name` where the
version's captions have `<person>`.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from typing import Any

import pyarrow as pa
from PIL import Image, ImageDraw

from catalog import storage
from catalog.keys import sample_key
from catalog.parquet import write_parquet
from catalog.publish import publish_version
from catalog.reasons import STAGE_OF, STAGES, check_reason
from catalog.scores import DEFAULT_SAMPLE_PER_REASON, REJECTS_SAMPLE_FILE
from catalog.shards import iter_samples, write_shard
from catalog.synthetic_rejects import PERSON, rejected_rows, sample_table
from catalog.versions import version_numbers, version_uri

PERSON_NAME = "Maribel Quintanilla-Oyelaran"  # planted in the raw source captions only
_WORDS = "a dog cat runs on the green grass near old red house with two children playing ball in park".split()
VIEW_MEMBERS = {"image": ["g0.jpg", "g1.jpg", "l0.jpg", "l1.jpg"], "text": ["eda0.txt", "eda1.txt", "bt.spa.txt"]}


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def make_sample(url: str, caption: str, rng: random.Random, views: bool = True) -> dict[str, bytes]:
    """The members of one sample: jpg, txt, json and (optionally) views."""
    w, h = rng.randint(256, 400), rng.randint(256, 400)
    color = tuple(rng.randint(30, 225) for _ in range(3))
    image = Image.new("RGB", (w, h), color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=tuple(255 - c for c in color))
    meta: dict[str, Any] = {
        "url": url,
        "orig_width": w * 2,
        "orig_height": h * 2,
        "width": w,
        "height": h,
        "lang": "en",
        "lang_score": round(rng.uniform(0.6, 1.0), 3),
        "english_ratio": 1.0,
        "phash": f"{rng.getrandbits(64):016x}",
        "person_substituted": "<person>" in caption,
    }
    members = {"jpg": _jpeg(image), "txt": caption.encode("utf-8")}
    if views:
        members["g0.jpg"] = _jpeg(image.crop((0, 0, w * 3 // 4, h * 3 // 4)).resize((224, 224)))
        members["g1.jpg"] = _jpeg(image.crop((w // 4, h // 4, w, h)).resize((224, 224)))
        members["l0.jpg"] = _jpeg(image.crop((0, 0, w // 3, h // 3)).resize((96, 96)))
        members["l1.jpg"] = _jpeg(image.crop((w // 2, h // 2, w, h)).resize((96, 96)))
        words = caption.split()
        members["eda0.txt"] = " ".join(reversed(words)).encode("utf-8")
        members["eda1.txt"] = " ".join(words[:-1] or words).encode("utf-8")
        members["bt.spa.txt"] = ("the " + caption).encode("utf-8")
        meta["views"] = {"image": "random_resized_crop", "text": ["eda", "bt.spa"]}
    members["json"] = json.dumps(meta, sort_keys=True).encode("utf-8")
    return members


def funnel_for(kept: int, rejected: dict[str, int]) -> dict[str, Any]:
    """A funnel object (docs/formats.md) with each reason's rejects in its stage (`catalog.reasons.STAGE_OF`)."""
    stages, remaining = [], kept + sum(rejected.values())
    total_in = remaining
    for stage in STAGES:
        here = {r: n for r, n in rejected.items() if STAGE_OF[check_reason(r)] == stage and n}
        out = remaining - sum(here.values())
        stages.append({"stage": stage, "in": remaining, "kept": out, "rejected": here})
        remaining = out
    return {"in": total_in, "kept": kept, "rejected": {r: n for r, n in rejected.items() if n}, "stages": stages}


def make_version(
    root: str,
    dataset: str,
    n: int,
    *,
    seed: int = 0,
    shard_size: int = 8,
    views: bool = True,
    captions: list[str] | None = None,
    rejected: dict[str, int] | None = None,
    parents: list[str] | None = None,
    carry_shards: list[str] | None = None,
    url_offset: int = 0,
    rejects_sample: bool = False,
    sample_per_reason: int = DEFAULT_SAMPLE_PER_REASON,
    person_name: str = PERSON_NAME,
) -> dict[str, Any]:
    """Write and publish the next version of `dataset` with `n` new samples.

    `captions` overrides the first captions (e.g. markup that must render as text);
    `carry_shards` lists shard paths of older versions to reference, as a refresh does.
    `rejects_sample`: also write rejects_sample.parquet (up to `sample_per_reason` rows per
    reason of the funnel, recorded as the config's `rejects.sample_per_reason`) and the raw
    source table `{dataset}/sources/v{N}.parquet` (captions with `person_name`), listed as
    the version's source.
    """
    rng = random.Random(seed)
    version = (version_numbers(root, dataset) or [0])[-1] + 1
    samples = []
    for i in range(n):
        url = f"http://127.0.0.1/img/{url_offset + i}.jpg"
        caption = (
            (captions or [])[i] if i < len(captions or []) else " ".join(rng.choices(_WORDS, k=rng.randint(4, 12)))
        )
        if i % 5 == 4 and not (captions and i < len(captions)):
            caption = "<person> with " + caption
        samples.append((sample_key(url), make_sample(url, caption, rng, views)))
    paths = list(carry_shards or [])
    for s in range(0, n, shard_size):
        path = f"v{version}/shards/shard-{s // shard_size:06d}.tar"
        write_shard(storage.join(root, dataset, path), [(k, m.items()) for k, m in samples[s : s + shard_size]])
        paths.append(path)
    rejected = (
        rejected
        if rejected is not None
        else {"empty_caption": 2, "not_english": 3, "download_failed": 4, "image_too_small": 1, "duplicate_image": 2}
    )
    config: dict[str, Any] = {"synthetic": {"n": n, "seed": seed, "shard_size": shard_size}}
    sources = [{"uri": f"synthetic://{dataset}/{seed}", "rows": n + sum(rejected.values()), "sha256": "0" * 64}]
    if rejects_sample:
        config["rejects"] = {"sample_per_reason": sample_per_reason}
        sources = [
            _write_rejects(root, dataset, version, samples, rejected, sample_per_reason, person_name, seed, url_offset)
        ]
    carried = sum(_samples_in(root, dataset, p) for p in carry_shards or [])
    return publish_version(
        root,
        dataset,
        version,
        paths,
        funnel=funnel_for(n + carried, rejected),
        config=config,
        sources=sources,
        parents=parents,
        code="synthetic",
        views=VIEW_MEMBERS if views else None,
    )


def _write_rejects(
    root: str,
    dataset: str,
    version: int,
    samples: list[tuple[str, dict[str, bytes]]],
    rejected: dict[str, int],
    per_reason: int,
    person_name: str,
    seed: int,
    url_offset: int,
) -> dict[str, Any]:
    """Write rejects_sample.parquet and the raw source table; return the source's manifest entry."""
    representative = (samples[0][0], samples[0][1]["jpg"]) if samples else None
    rows = rejected_rows(
        rejected,
        first_row=len(samples),
        url_offset=url_offset + seed * 10_000,
        words=_WORDS,
        person_name=person_name,
        representative=representative,
        seed=seed,
    )
    write_parquet(
        storage.join(version_uri(root, dataset, version), REJECTS_SAMPLE_FILE), sample_table(rows, per_reason)
    )
    source = [
        {
            "row": i,
            "key": key,
            "url": json.loads(m["json"])["url"],
            "caption": m["txt"].decode().replace(PERSON, person_name),
        }
        for i, (key, m) in enumerate(samples)
    ] + [{"row": r["row"], "key": r["key"], "url": r["url"], "caption": r["raw_caption"]} for r in rows]
    uri = storage.join(root, dataset, "sources", f"v{version}.parquet")
    write_parquet(uri, pa.Table.from_pylist(source))
    digest = hashlib.sha256(storage.read_bytes(uri)).hexdigest()
    return {"uri": uri, "rows": len(source), "sha256": digest}


def _samples_in(root: str, dataset: str, path: str) -> int:
    return sum(1 for _ in iter_samples(storage.join(root, dataset, path), members=()))
