"""The build: source -> text -> download -> image -> dedup -> shard -> published version.

Each stage returns one outcome row per input row (`reason` null = passed on), so the
accounting is exact: the funnel is checked per stage and overall, and every input row
must end in exactly one of kept.parquet / rejects.parquet, or the build fails before
anything is published. Re-running with the same config resumes the unfinished version.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import storage
from pipelines.build.config import BuildConfig
from pipelines.build.dedup import count_dedup, run_dedup
from pipelines.build.download import count_download, run_download
from pipelines.build.funnel import StageCount, check_rows, funnel, summary_table
from pipelines.build.image import count_image, run_image
from pipelines.build.outputs import write_version
from pipelines.build.raysession import ray_session
from pipelines.build.shard import run_shards
from pipelines.build.source import read_source
from pipelines.build.text import count_text, run_text
from pipelines.build.workdir import open_workdir


def passed(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_null(table.column("reason")))


def rejected(table: pa.Table, stage: str) -> pa.Table:
    t = table.filter(pc.is_valid(table.column("reason")))
    return pa.table({"row": t.column("row"), "stage": pa.array([stage] * t.num_rows, pa.string()), "reason": t.column("reason")})


STAGES = ("filter", "download")  # stages a debugging run may stop after


def run_build(
    cfg: BuildConfig, log: Callable[[str], None] = print, stop_after: str | None = None, timings: dict[str, float] | None = None
) -> dict[str, Any] | None:
    """Build (or resume) the next version of `cfg.dataset`; return its manifest.

    `stop_after="filter"` / `"download"` runs only the stages up to that one (in the same
    resumable work folder) and prints their counts; nothing is published. `timings`, when
    given, receives the wall seconds of each stage.
    """
    clock = _Clock(timings if timings is not None else {})
    source = read_source(cfg.source)  # bad input fails here, before Ray or any write
    config = cfg.to_dict()
    with ray_session(cfg.ray) as cpus:
        wd = open_workdir(cfg.root, cfg.dataset, config, log)
        log(f"build: {cfg.dataset} v{wd.version} from {source.uri} ({source.table.num_rows} rows, {cpus} CPUs)")
        with clock("text"):
            text = run_text(source.table, cfg.filter, wd, cpus)
        if stop_after == "filter":
            log(summary_table(funnel([StageCount("source", len(text), len(text)), count_text(text)])))
            return None
        with clock("download"):
            dl = run_download(passed(text).select(["row", "url"]), cfg, wd)
        if stop_after == "download":
            log(summary_table(funnel([StageCount("source", len(text), len(text)), count_text(text), count_download(dl, len(passed(text)))])))
            return None
        with clock("image"):
            img = run_image(dl, cfg.image, wd, cpus)
        candidates = _join(passed(img).select(["row", "phash"]), text.select(["row", "key"]), dl.select(["row", "sha256"]))
        with clock("dedup"):
            dd = run_dedup(candidates, cfg.dedup.max_hamming)
        kept = kept_samples(passed(dd), text, dl, img)
        with clock("shard"):
            kept, shards = run_shards(kept, cfg.shard, wd)
    n = source.table.num_rows
    counts = [
        StageCount("source", n, n),
        count_text(text),
        count_download(dl, len(passed(text))),
        count_image(img, len(passed(dl))),
        count_dedup(dd),
        StageCount("shard", kept.num_rows, sum(s["samples"] for s in shards)),
    ]
    f = funnel(counts)
    rejects = _rejects(text, [(text, "text"), (dl, "download"), (img, "image"), (dd, "dedup")])
    check_rows(n, kept.column("row").to_pylist(), rejects.column("row").to_pylist())
    manifest = write_version(
        wd.out, dataset=cfg.dataset, version=wd.version, config=config, sources=[source.manifest_entry()],
        funnel=f, kept=kept, rejects=rejects, shards=shards,
    )
    if not cfg.keep_work:
        storage.remove(wd.work, recursive=True)
    log(summary_table(f))
    log(f"build: published {wd.out} ({manifest['samples']} samples in {len(shards)} shards)")
    return manifest


class _Clock:
    """`with clock("stage"):` adds the block's wall seconds to timings["stage"]."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


def kept_samples(survivors: pa.Table, text: pa.Table, dl: pa.Table, img: pa.Table) -> pa.Table:
    """Everything a shard member needs about each kept row (jpg bytes stay in the raw shards)."""
    t = _join(
        survivors.select(["row"]),
        text.select(["row", "key", "url", "caption", "lang", "lang_score", "english_ratio", "person_substituted"]),
        dl.select(["row", "width", "height", "original_width", "original_height", "raw"]),
        img.select(["row", "phash"]),
    )
    return t.rename_columns([{"original_width": "orig_width", "original_height": "orig_height"}.get(c, c) for c in t.column_names])


def _join(first: pa.Table, *others: pa.Table) -> pa.Table:
    out = first
    for other in others:
        out = out.join(other, keys="row", join_type="left outer")
    return out.sort_by("row")


def _rejects(text: pa.Table, stages: list[tuple[pa.Table, str]]) -> pa.Table:
    parts = pa.concat_tables([rejected(t, stage) for t, stage in stages])
    return _join(parts, text.select(["row", "key", "url"])).select(["row", "key", "url", "stage", "reason"])
