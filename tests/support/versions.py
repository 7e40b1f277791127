"""The one way tests write dataset versions: shards through `catalog.shards.write_shard`, the
manifest (and stats.json) through `catalog.publish.publish_version`, per docs/formats.md.

A test builds its samples (`sample_members` gives the members a build writes, in the
build's member order `jpg`, `txt`, `json`, then any views) and calls `write_version`, which
also writes kept.parquet and rejects.parquet with the documented columns. View members are
declared (`views=`), as the augment job declares them; nothing is guessed from names.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from PIL import Image

from catalog import storage
from catalog.keys import sample_key
from catalog.parquet import write_parquet
from catalog.publish import publish_version
from catalog.shards import write_shard
from catalog.synthetic import funnel_for
from catalog.versions import version_numbers

Sample = tuple[str, dict[str, bytes]]  # (url, members in tar order)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(width: int = 24, height: int = 12, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small real PNG of one colour (an evaluation drawing in catalog tests)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def sample_members(
    url: str, jpg: bytes, caption: str, views: Mapping[str, bytes] | None = None, meta: Mapping[str, Any] | None = None
) -> dict[str, bytes]:
    """`jpg`, `txt`, `json` (every documented field) and then `views`, as the build and the
    augment job write them. `meta` overrides json fields."""
    with Image.open(io.BytesIO(jpg)) as img:
        width, height = img.size
    fields: dict[str, Any] = {
        "url": url,
        "orig_width": width,
        "orig_height": height,
        "width": width,
        "height": height,
        "lang": "en",
        "lang_score": 0.9,
        "english_ratio": 1.0,
        "phash": hashlib.sha256(jpg).hexdigest()[:16],
        "person_substituted": "<person>" in caption,
        **(meta or {}),
    }
    members = {
        "jpg": jpg,
        "txt": caption.encode("utf-8"),
        "json": json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }
    members.update(views or {})
    return members


def write_version(
    root: str | Path,
    dataset: str,
    samples: Sequence[Sample],
    *,
    per_shard: int | Sequence[int] = 100,
    views: Mapping[str, Iterable[str]] | None = None,
    parents: list[str] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write and publish the next version of `dataset` under `root`; return its manifest.

    `per_shard`: samples per shard, or the sample count of each shard in order.
    """
    root = str(root)
    version = (version_numbers(root, dataset) or [0])[-1] + 1
    counts = list(per_shard) if not isinstance(per_shard, int) else _chunks(len(samples), per_shard)
    if sum(counts) != len(samples):
        raise ValueError(f"per_shard {counts} does not add up to {len(samples)} samples")
    shards, rows, start = [], [], 0
    for i, count in enumerate(counts):
        path = f"v{version}/shards/shard-{i:06d}.tar"
        part = samples[start : start + count]
        start += count
        entry = write_shard(
            storage.join(root, dataset, path), [(sample_key(url), members.items()) for url, members in part]
        )
        shards.append({"path": path, **entry})
        for url, members in part:
            meta = json.loads(members["json"])
            rows.append(
                {
                    "key": sample_key(url),
                    "url": url,
                    "caption": members["txt"].decode("utf-8"),
                    "shard": path,
                    "orig_width": meta["orig_width"],
                    "orig_height": meta["orig_height"],
                    "lang_score": meta["lang_score"],
                    "phash": meta["phash"],
                    "sha256": hashlib.sha256(members["jpg"]).hexdigest(),
                }
            )
    out = storage.join(root, dataset, f"v{version}")
    kept_schema = pa.schema(
        [
            ("key", pa.string()),
            ("url", pa.string()),
            ("caption", pa.string()),
            ("shard", pa.string()),
            ("orig_width", pa.int64()),
            ("orig_height", pa.int64()),
            ("lang_score", pa.float64()),
            ("phash", pa.string()),
            ("sha256", pa.string()),
        ]
    )
    write_parquet(storage.join(out, "kept.parquet"), pa.Table.from_pylist(rows, schema=kept_schema))
    rejects_schema = pa.schema(
        [("key", pa.string()), ("url", pa.string()), ("stage", pa.string()), ("reason", pa.string())]
    )
    write_parquet(storage.join(out, "rejects.parquet"), pa.Table.from_pylist([], schema=rejects_schema))
    n = len(samples)
    sources = [
        {"uri": f"test://{dataset}/v{version}", "rows": n, "sha256": hashlib.sha256(dataset.encode()).hexdigest()}
    ]
    return publish_version(
        root,
        dataset,
        version,
        shards,
        funnel=funnel_for(n, {}),
        config=config or {},
        sources=sources,
        parents=parents,
        code="test",
        views=views,
    )


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - s) for s in range(0, n, size)]
