"""Stage `image`: a pool of Ray actors over the raw download shards, one call per shard.

Per image, in `catalog.reasons` check order: the image-stage filters selected in
`filter.checks` (`too_many_pixels`, `image_too_small`, `aspect_ratio`: a safety net behind
img2dataset's own checks of the same limits) on the ORIGINAL size img2dataset recorded,
and, at `not_an_image`'s place in the order, the decode: the resized JPEG must decode
(PIL), which also gives the 64-bit pHash (`pipelines.phash`) for `dedup`. The exact content
hash is img2dataset's sha256 of the downloaded bytes. Every downloaded image is decoded and
hashed, whichever check rejects it, so `scores.parquet` can replay other image thresholds
(`decoded`, `phash`; the sizes come from the download). Each call reads its raw shard
itself (no image passes through the driver), maps img2dataset's status of every row onto
the download stage's reason, checks the downloaded ones, and writes one image part (`PART`:
both stages' outcome of every row of the shard) with a marker.
"""

from __future__ import annotations

import io
import posixpath
import threading
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from catalog.console import progress
from catalog.keys import sample_key
from catalog.parquet import read_parquet, write_parquet
from catalog.reasons import reasons_of
from pipelines.filters.base import Filter
from pipelines.filters.config import FilterConfig
from pipelines.phash import phash64
from pipelines.stages.download import META, complete_shards, download_reason
from pipelines.stages.parts import run_actors
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


PART = pa.schema(  # an image part: every row of one raw download shard, with both stages' outcome
    [
        ("row", pa.int64()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("sha256", pa.string()),
        ("raw", pa.string()),
        ("download_reason", pa.string()),  # the download stage's reason (null: downloaded)
        ("reason", pa.string()),  # the image stage's reason (null: passed; null too when not downloaded)
        ("decoded", pa.bool_()),
        ("phash", pa.string()),
    ]
)


class ImageActor:
    """A Ray actor: each call reads one raw download shard (in the actor, so no image
    passes through the driver), decides both the download outcome and the image checks of its
    rows, and writes its image part."""

    def __init__(self, cfg: dict):
        self.checks = ImageChecks(cfg)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        t = read_parquet(item["raw"], columns=["row", "url", "jpg", *META[1:]])
        out: dict[str, list] = {name: [] for name in ("download_reason", "reason", "decoded", "phash")}
        cols = ("status", "error_message", "jpg", "original_width", "original_height")
        for status, error, jpg, w, h in zip(*(t.column(c).to_pylist() for c in cols)):
            dl_reason = download_reason(status, error)
            reason, ph = self.checks(jpg, w, h) if dl_reason is None else (None, None)
            out["download_reason"].append(dl_reason)
            out["reason"].append(reason)
            out["decoded"].append(None if dl_reason is not None else ph is not None)
            out["phash"].append(ph)
        table = {name: t.column(name) for name in META}
        table["key"] = pa.array([sample_key(u) for u in t.column("url").to_pylist()], pa.string())
        table["raw"] = pa.array([item["raw"]] * t.num_rows, pa.string())
        table.update({name: pa.array(values, PART.field(name).type) for name, values in out.items()})
        part = pa.table({name: table[name] for name in PART.names}).cast(PART).sort_by("row")
        write_parquet(item["out"], part)
        rows = part.column("row")
        return {
            "raw": item["raw"],
            "rows": part.num_rows,
            "first_row": pc.min(rows).as_py(),
            "last_row": pc.max(rows).as_py(),
        }


class ImageStage:
    """The image stage beside a running download, started before it: a thread of the driver runs
    the actor pool, fed each raw shard as soon as img2dataset has finished it, so decoding on
    the CPU overlaps downloading from the network; `finish` says the download has ended. The
    actors reserve no CPU: img2dataset's tasks hold the CPUs while they wait on the network
    (`pipelines.stages.parts.run_actors`). The raw folder is listed at most once per ten times
    its last listing took (at least every `run_actors` poll), so listing 10^5 shards on S3
    costs the driver thread at most a tenth of its time."""

    def __init__(self, cfg: FilterConfig, wd: WorkDir, workers: int) -> None:
        self.wd = wd
        self.seconds = 0.0  # the stage's wall time after `finish` was called
        self._given: set[str] = set()
        self._next_listing = 0.0  # perf_counter time of the next listing of the raw folder
        self._ended = threading.Event()  # the download has ended (or failed)
        self._aborted = False
        self._error: BaseException | None = None
        # the console shows the download's bar while both run, then this stage's for the rest
        self._lock = threading.Lock()
        self._checked = 0  # shards checked by this run
        self._bar: Any = None
        self._thread = threading.Thread(target=self._run, args=(cfg, workers), name="image", daemon=True)
        self._thread.start()

    def _run(self, cfg: FilterConfig, workers: int) -> None:
        def done(result: dict[str, Any]) -> None:
            raw = result["raw"]
            self.wd.mark(_name(raw), {"uri": _out(self.wd, raw), **{k: result[k] for k in PART_MARK}})
            with self._lock:
                self._checked += 1
                if self._bar is not None:
                    self._bar.update(1)

        try:
            run_actors(ImageActor, (cfg.to_dict(),), [], workers, done, feed=self._feed, num_cpus=0)
        except BaseException as e:  # noqa: BLE001 - raised again by `finish`, in the driver's main thread
            self._error = e

    def _feed(self) -> tuple[list[dict[str, Any]], bool]:
        ended = self._ended.is_set()  # before listing: once the download has ended, every shard is listed
        if self._aborted:
            raise RuntimeError("image: the download failed")
        started = time.perf_counter()
        if not ended and started < self._next_listing:
            return [], True
        new = [raw for raw in complete_shards(self.wd) if raw not in self._given]
        self._next_listing = started + 10 * (time.perf_counter() - started)
        self._given.update(new)
        return [{"raw": raw, "out": _out(self.wd, raw)} for raw in new if not self.wd.done(_name(raw))], not ended

    def finish(self, raws: list[str]) -> list[dict[str, Any]]:
        """Once the download has ended with `raws`: wait for the checks of its last shards;
        each image part's marker (uri, rows, first_row, last_row: a raw shard holds consecutive
        rows of one part), in the order of `raws`."""
        start = time.perf_counter()
        with self._lock:
            before = sum(self.wd.done(_name(raw)) for raw in raws) - self._checked  # by an earlier run
            self._bar = progress(total=len(raws) - before, initial=self._checked, desc="image", unit="shard")
        self._ended.set()
        self._thread.join()
        self._bar.close()
        self.seconds = time.perf_counter() - start
        if self._error is not None:
            raise self._error
        return [self.wd.marker(_name(raw)) for raw in raws]

    def abort(self) -> None:
        """The download failed: stop the pool (its running calls finish in their actors)."""
        self._aborted = True
        self._ended.set()
        self._thread.join()


PART_MARK = ("rows", "first_row", "last_row")


def _name(raw: str) -> str:
    return f"image-{posixpath.basename(raw)}"


def _out(wd: WorkDir, raw: str) -> str:
    return wd.path("image", posixpath.basename(raw))
