"""Stage `image`: Ray Data over the raw download shards (rows img2dataset downloaded).

Per image: the resized JPEG must decode (PIL); the ORIGINAL size recorded by img2dataset is
checked again against the FILIP limits (a safety net behind img2dataset's own checks, in
`catalog.reasons` order: too_many_pixels, image_too_small, aspect_ratio); and the 64-bit
pHash (`pipelines.phash`) is computed for `dedup`. The exact content hash is img2dataset's
sha256 of the downloaded bytes. One task per raw shard, each with a part file and a marker.
"""

from __future__ import annotations

import io
import posixpath
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from pipelines.stages.config import ImageConfig
from pipelines.stages.funnel import StageCount
from catalog.parquet import arrow_filesystem, read_parquet, write_parquet
from pipelines.stages.tasks import finish_tasks
from pipelines.stages.workdir import WorkDir
from pipelines.phash import phash64

SCHEMA = pa.schema([("row", pa.int64()), ("reason", pa.string()), ("phash", pa.string())])


def image_reason(jpg: bytes | None, orig_w: int, orig_h: int, cfg: ImageConfig) -> tuple[str | None, str | None]:
    """(reason or None, pHash as 16 hex chars or None) for one downloaded image."""
    if orig_w * orig_h > cfg.max_pixels:
        return "too_many_pixels", None
    try:
        with Image.open(io.BytesIO(jpg or b"")) as im:
            im.load()
            ph = f"{phash64(im):016x}"
    except Exception:  # noqa: BLE001 - whatever PIL raises, the bytes are not a usable image
        return "not_an_image", None
    short, long = min(orig_w, orig_h), max(orig_w, orig_h)
    if short < cfg.min_size:
        return "image_too_small", None
    if long / short > cfg.max_aspect_ratio:
        return "aspect_ratio", None
    return None, ph


class CheckImages:
    """Ray Data batch function: downloaded rows of a raw shard -> (row, reason, phash, path)."""

    def __init__(self, cfg: dict):
        self.cfg = ImageConfig.model_validate(cfg)

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = batch.filter(pc.equal(batch.column("status"), "success"))
        out: dict[str, list] = {"row": batch.column("row").to_pylist(), "reason": [], "phash": []}
        for jpg, w, h in zip(*(batch.column(c).to_pylist() for c in ("jpg", "original_width", "original_height"))):
            reason, ph = image_reason(jpg, w, h, self.cfg)
            out["reason"].append(reason)
            out["phash"].append(ph)
        return pa.table({**out, "path": batch.column("path")})


def run_image(downloaded: pa.Table, cfg: ImageConfig, wd: WorkDir, workers: int) -> pa.Table:
    """Check every downloaded row (reason null after `download`); one row out per row in."""
    import ray

    ok = downloaded.filter(pc.is_null(downloaded.column("reason")))
    expected = Counter(ok.column("raw").to_pylist())
    pending = sorted(raw for raw in expected if not wd.done(_task(raw)))
    if pending:
        fs, paths = arrow_filesystem(pending)
        raw_of = dict(zip(paths, pending))
        ds = ray.data.read_parquet(paths, filesystem=fs, include_paths=True).select_columns(
            ["row", "status", "jpg", "original_width", "original_height", "path"]
        ).map_batches(CheckImages, fn_constructor_kwargs={"cfg": cfg.to_dict()}, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, workers)))

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
