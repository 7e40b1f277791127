"""Stage `image`: Ray Data over the raw download shards (rows img2dataset downloaded).

Per image, in `catalog.reasons` check order: the image-stage filters selected in
`filter.checks` (`too_many_pixels`, `image_too_small`, `aspect_ratio`: a safety net behind
img2dataset's own checks of the same limits) on the ORIGINAL size img2dataset recorded,
and, at `not_an_image`'s place in the order, the decode: the resized JPEG must decode
(PIL), which also gives the 64-bit pHash (`pipelines.phash`) for `dedup`. The exact content
hash is img2dataset's sha256 of the downloaded bytes. Every downloaded image is decoded and
hashed, whichever check rejects it, so `scores.parquet` can replay other image thresholds
(`decoded`, `phash`; the sizes come from the download). One task per raw shard, each with a
part file and a marker.
"""

from __future__ import annotations

import io
import posixpath
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from catalog.parquet import arrow_filesystem, read_parquet, write_parquet
from catalog.reasons import reasons_of
from pipelines.filters.base import Filter
from pipelines.filters.config import FilterConfig
from pipelines.phash import phash64
from pipelines.stages.funnel import StageCount
from pipelines.stages.tasks import finish_tasks
from pipelines.stages.workdir import WorkDir

SCHEMA = pa.schema([("row", pa.int64()), ("reason", pa.string()), ("decoded", pa.bool_()), ("phash", pa.string())])
DECODE = "not_an_image"  # the reason of the stage's own decode step


def decode_phash(jpg: bytes | None) -> str | None:
    """The image's pHash as 16 hex chars, or None when the bytes do not decode."""
    try:
        with Image.open(io.BytesIO(jpg or b"")) as im:
            im.load()
            return f"{phash64(im):016x}"
    except Exception:  # noqa: BLE001 - whatever PIL raises, the bytes are not a usable image
        return None


class ImageChecks:
    """The image stage's checks in check order: its selected filters, and the decode at `not_an_image`."""

    def __init__(self, config: FilterConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = FilterConfig.model_validate(config)
        filters = (config or FilterConfig()).filters("image")
        for f in filters:
            f.setup()
        order = reasons_of("image")
        decode_at = order.index(DECODE)
        self.before: list[Filter] = [f for f in filters if order.index(f.reason) < decode_at]
        self.after: list[Filter] = [f for f in filters if order.index(f.reason) >= decode_at]

    def __call__(self, jpg: bytes | None, orig_w: int, orig_h: int) -> tuple[str | None, str | None]:
        """(reason or None, pHash as 16 hex chars or None when the bytes do not decode) for one image."""
        ph = decode_phash(jpg)
        return self.decide({"orig_width": orig_w, "orig_height": orig_h, "decoded": ph is not None}), ph

    def decide(self, scores: dict[str, Any]) -> str | None:
        """The first failing reason in check order from an image's scores (`decoded`, original size), or None."""
        for f in self.before:
            verdict = f.decide(scores)
            if verdict is not True:
                return verdict[1]
        if not scores["decoded"]:
            return DECODE
        for f in self.after:
            verdict = f.decide(scores)
            if verdict is not True:
                return verdict[1]
        return None


class CheckImages:
    """Ray Data batch function: downloaded rows of a raw shard -> (row, reason, phash, path)."""

    def __init__(self, cfg: dict):
        self.checks = ImageChecks(cfg)

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = batch.filter(pc.equal(batch.column("status"), "success"))
        out: dict[str, list] = {"row": batch.column("row").to_pylist(), "reason": [], "decoded": [], "phash": []}
        for jpg, w, h in zip(*(batch.column(c).to_pylist() for c in ("jpg", "original_width", "original_height"))):
            reason, ph = self.checks(jpg, w, h)
            out["reason"].append(reason)
            out["decoded"].append(ph is not None)
            out["phash"].append(ph)
        return pa.table({**out, "path": batch.column("path")})


def run_image(downloaded: pa.Table, cfg: FilterConfig, wd: WorkDir, workers: int) -> pa.Table:
    """Check every downloaded row (reason null after `download`); one row out per row in."""
    import ray

    ok = downloaded.filter(pc.is_null(downloaded.column("reason")))
    expected = Counter(ok.column("raw").to_pylist())
    pending = sorted(raw for raw in expected if not wd.done(_task(raw)))
    if pending:
        fs, paths = arrow_filesystem(pending)
        raw_of = dict(zip(paths, pending))
        ds = (
            ray.data.read_parquet(paths, filesystem=fs, include_paths=True)
            .select_columns(["row", "status", "jpg", "original_width", "original_height", "path"])
            .map_batches(
                CheckImages,
                fn_constructor_kwargs={"cfg": cfg.to_dict()},
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, workers)),
            )
        )

        def finish(path: str, rows: pa.Table) -> None:
            raw = raw_of[path]
            write_parquet(_part(wd, raw), rows.select(SCHEMA.names).cast(SCHEMA).sort_by("row"))
            wd.mark(_task(raw), {"rows": rows.num_rows})

        finish_tasks(ds, lambda batch: batch.column("path"), {p: expected[raw_of[p]] for p in paths}, finish, "image")
    parts = [read_parquet(_part(wd, raw)) for raw in sorted(expected)]
    return pa.concat_tables(parts).sort_by("row") if parts else SCHEMA.empty_table()


def _task(raw: str) -> str:
    return "image-" + posixpath.basename(raw)


def _part(wd: WorkDir, raw: str) -> str:
    return wd.path("image", posixpath.basename(raw))


def count_image(table: pa.Table, n_in: int) -> StageCount:
    return StageCount.of("image", n_in, table.column("reason").to_pylist())
