"""The build: source -> text -> download -> image -> dedup -> shard -> published version.

By `source.modality`: a pair source runs every stage; an image source (no captions) passes
every row through `text` unchecked, then runs the rest; a text source (no URLs) runs
`text` then `shard` (no download, image or dedup stage). Each stage returns one outcome
row per input row (`reason` null = passed on), so the accounting is exact: the funnel is
checked per stage and overall, and every input row must end in exactly one of
kept.parquet / rejects.parquet, or the build fails before anything is published.
The source columns of `source.keep_columns` (`keep.NAME` in the source table) stay out of
the stages and are joined by row onto the kept samples, whose json carries them.
Re-running with the same config resumes the unfinished version; re-running a finished build
(the same config over the same source rows and sha256) publishes nothing and names the
version that holds it.
"""

from __future__ import annotations

import contextlib
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from catalog import console, storage
from catalog.errors import UserError
from catalog.parquet import read_parquet, write_parquet
from catalog.raysession import ray_session
from catalog.scores import SAMPLE_SCHEMA
from catalog.versions import version_numbers, version_uri
from pipelines.stages.assemble import assemble_part
from pipelines.stages.config import BuildConfig
from pipelines.stages.dedup import run_dedup
from pipelines.stages.download import download_reason, run_download
from pipelines.stages.funnel import ConservationError, StageCount, funnel, summary_table
from pipelines.stages.image import ImageStage
from pipelines.stages.outputs import write_version
from pipelines.stages.parts import run_tasks
from pipelines.stages.scores import pick_sample, sample_part
from pipelines.stages.shard import run_shards, shard_of, windows_of
from pipelines.stages.source import plan_source, split_source
from pipelines.stages.text import pass_text, run_text
from pipelines.stages.workdir import WorkDir, open_workdir
from pipelines.views.job import augment_version

STAGES = ("filter", "download")  # stages a debugging run may stop after


@dataclass
class Processed:
    """The outcome of running the stages over a set of input rows (`row` 0..n-1), as files in
    the work folder: nothing about a row is held by the driver."""

    counts: list[StageCount]
    kept: list[tuple[str, int]]  # (sorted bucket file, position of its first sample) in shard order
    rejects: list[str]  # per part: row, key, url, stage, reason
    shards: list[dict[str, Any]]
    scores: list[str]  # per part: every input row's scores (catalog.scores.SCHEMA)
    sample: str  # the rejects sample (catalog.scores.SAMPLE_SCHEMA)
    samples_per_shard: int
    version: int

    def kept_tables(self) -> Iterator[pa.Table]:
        """The kept samples in shard order with their `shard` path, one bucket at a time."""
        for uri, start in self.kept:
            t = read_parquet(uri)
            names = [shard_of(start + i, self.version, self.samples_per_shard) for i in range(t.num_rows)]
            yield t.append_column("shard", pa.array(names, pa.string()))


def run_build(
    cfg: BuildConfig,
    log: Callable[[str], None] = print,
    stop_after: str | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any] | None:
    """Build (or resume) the next version of `cfg.dataset`; return its manifest.

    `stop_after="filter"` / `"download"` runs only the stages up to that one (in the same
    resumable work folder) and prints their counts; nothing is published. `timings`, when
    given, receives the wall seconds of each stage.
    """
    modality = cfg.source.modality
    if stop_after == "download" and modality == "text":
        raise UserError("download: a text source (source.modality: text) has no download stage; run `filter`")
    plan = plan_source(cfg.source)  # bad input fails here, before Ray or any write
    storage.check_reachable(cfg.root)
    config = cfg.to_dict()
    identity = plan.identity()
    if stop_after is None:
        held = built_before(cfg.root, cfg.dataset, config, identity)
        if held is not None:
            log(
                f"build: {cfg.dataset}@{held['version']} already holds this build (the same config over the same "
                f"source files and sha256s); nothing published"
            )
            return held
    log_path = console.job_log_path(cfg.root, cfg.dataset, "build")
    with ray_session(cfg.ray, log_path) as cpus:
        wd = open_workdir(cfg.root, cfg.dataset, {"config": config, "source": identity}, log)
        parts, files = split_source(cfg.source, plan, wd)
        n = sum(f["rows"] for f in files)
        rows = f"{n} rows" + ("" if modality == "pair" else f", {modality} only")
        where = plan.uri if len(files) == 1 else f"{plan.uri} ({len(files)} files)"
        log(f"build: {cfg.dataset} v{wd.version} from {where} ({rows}, {cpus} CPUs)")
        log(f"build: full log in {console.current_log() or 'the console (--verbose)'}")
        clock = _Clock(timings if timings is not None else {})
        done = run_stages(parts, cfg, wd, cpus, log, stop_after, clock)
        if done is None:
            return None
        f = funnel(done.counts)  # every part checked its rows; the counts must add up to the input
        if f["in"] != n:
            raise ConservationError(f"build: {n} input rows but the funnel counts {f['in']}")
        manifest = write_version(
            wd.out,
            dataset=cfg.dataset,
            version=wd.version,
            config=config,
            sources=files,
            funnel=f,
            kept=done.kept_tables,
            rejects=done.rejects,
            shards=done.shards,
            modality=modality,
            scores=done.scores,
            sample=done.sample,
        )
        finish(cfg, wd, f, manifest, log, clock)
    return manifest


def built_before(root: str, dataset: str, config: dict[str, Any], identity: list[dict[str, str]]) -> dict | None:
    """The manifest of the newest version of `dataset` built with `config` over the same source
    files and sha256s (`Plan.identity`), or None: re-running a finished build publishes nothing."""
    for version in reversed(version_numbers(root, dataset)):
        manifest = storage.read_json(storage.join(version_uri(root, dataset, version), "manifest.json"))
        sources = [{"uri": s.get("uri"), "sha256": s.get("sha256")} for s in manifest.get("sources", [])]
        if manifest.get("config") == config and sources == identity and not manifest.get("parents"):
            return manifest
    return None


def finish(
    cfg: BuildConfig,
    wd: WorkDir,
    f: dict[str, Any],
    manifest: dict[str, Any],
    log: Callable[[str], None],
    clock: _Clock | None = None,
) -> None:
    """After publishing: drop the work folder (unless keep_work), print the funnel, run `augment:` if configured.

    Runs inside the build's Ray session, so the augment job uses the same cluster.
    """
    if not cfg.keep_work:
        drop_workdir(wd)
    log(summary_table(f))
    log(f"build: published {wd.out} ({manifest['samples']} samples in {len(manifest['shards'])} shards)")
    if cfg.augment is not None:
        with (clock or _Clock({}))("augment"):
            views = augment_version(cfg.root, cfg.dataset, wd.version, cfg.augment)
        log(f"build: published views {cfg.dataset}@{views} (parent {cfg.dataset}@{wd.version})")


def drop_workdir(wd: WorkDir) -> None:
    """Remove a version's work folder, and the dataset's `.work/` with the last one."""
    storage.remove(wd.work, recursive=True)
    work_root = storage.join(wd.dataset_uri, ".work")
    if storage.exists(work_root) and not storage.listdir(work_root):
        storage.remove(work_root, recursive=True)


def run_stages(
    parts: list[dict[str, Any]],
    cfg: BuildConfig,
    wd: WorkDir,
    cpus: int,
    log: Callable[[str], None] = print,
    stop_after: str | None = None,
    clock: _Clock | None = None,
    repeat_hashes: list[str] | None = None,
    prior_images: str | None = None,
) -> Processed | None:
    """text -> download -> image -> dedup -> shard over the source `parts` (`split_source`: rows 0..n-1).

    By `cfg.source.modality`: "pair" runs them all; "image" (rows without captions) passes
    every row through `text` unchecked; "text" (rows without URLs) runs text -> shard.
    `repeat_hashes` (a refresh): files of the caption hashes of more rows the repeated-caption
    count covers (the source list's rows decided before); `prior_images` (a parquet file of the
    key, sha256, phash of images already kept): new images duplicating one of them are `duplicate_image`.
    Every stage runs as tasks over files; the driver holds part lists and counts.
    """
    clock = clock or _Clock({})
    modality = cfg.source.modality
    n = sum(p["rows"] for p in parts)
    with clock("text"):
        if modality == "image":
            decided = pass_text(parts, wd)
        else:
            decided = run_text(parts, cfg.filter, wd, cpus, repeat_hashes)
        storage.remove(wd.path("source"), recursive=True)  # the raw captions: every part is checked
    if stop_after == "filter":
        log(summary_table(funnel([StageCount("source", n, n), _count("text", decided)])))
        return None
    images: list[dict[str, Any]] = []
    duplicates = None
    if modality != "text":
        # the image stage checks each raw shard as soon as the download has finished it:
        # "download" is the download's wall time, "image" the checks' time after it
        checks = ImageStage(cfg.filter, wd, cpus) if stop_after != "download" else None
        try:
            with clock("download"):
                raws, sent = run_download(decided, cfg, wd)
        except BaseException:
            if checks is not None:
                checks.abort()
            raise
        if checks is None:
            counts = [StageCount("source", n, n), _count("text", decided), _count("download", raws, sent)]
            log(summary_table(funnel(counts)))
            return None
        images = checks.finish(raws)
        clock.add("image", checks.seconds)
        if sum(m["rows"] for m in images) != sent:
            raise RuntimeError(f"download: {sent} rows sent to img2dataset, {sum(m['rows'] for m in images)} came back")
        if cfg.dedup.enabled:
            with clock("dedup"):
                duplicates = run_dedup([m["uri"] for m in images], cfg.dedup.max_hamming, wd, prior_images)
    with clock("shard"):
        window = cfg.shard.shuffle_rows
        by_first = sorted(images, key=lambda m: m["first_row"])  # raw shards hold consecutive rows of one part
        starts = [m["first_row"] for m in by_first]
        fragments: list[list[str]] = [[] for _ in range(-(-n // window))]
        jobs = {}
        for i, (part, text_part) in enumerate(zip(parts, decided)):
            lo, hi = part["first_row"], part["first_row"] + part["rows"]
            windows = windows_of(lo, part["rows"], window)
            kept_uris = [wd.path("assemble", f"kept-w{w:06d}", f"part-{i:05d}.parquet") for w in windows]
            for w, uri in zip(windows, kept_uris):
                fragments[w].append(uri)
            jobs[f"{i:05d}"] = {
                "text": text_part,
                "images": [m["uri"] for m in by_first[bisect_left(starts, lo) : bisect_left(starts, hi)]],
                "duplicates": duplicates,
                "first_row": lo,
                "rows": part["rows"],
                "modality": modality,
                "per_reason": cfg.rejects.sample_per_reason,
                "seed": cfg.shard.seed,
                "shuffle_rows": window,
                "rejects": wd.path("assemble", f"rejects-{i:05d}.parquet"),
                "scores": wd.path("assemble", f"scores-{i:05d}.parquet"),
                "candidates": wd.path("assemble", f"candidates-{i:05d}.parquet"),
                "windows": [windows.start, windows.stop],
                "kept": kept_uris,
            }
        done = run_tasks(wd, "assemble", {k: (job,) for k, job in jobs.items()}, assemble_part, "assemble")
        kept, shards = run_shards(fragments, cfg.shard, wd, modality)
    counts = [StageCount("source", n, n)]
    for stage_counts in zip(*(d["counts"] for d in done.values())):
        counts.append(StageCount.add(stage_counts))
    n_kept = sum(d["kept"] for d in done.values())
    counts.append(StageCount("shard", n_kept, sum(s["samples"] for s in shards)))
    sample = _sample(wd, list(jobs.values()), images, duplicates, cfg.rejects.sample_per_reason)
    return Processed(
        counts,
        kept,
        [job["rejects"] for job in jobs.values()],
        shards,
        [job["scores"] for job in jobs.values()],
        sample,
        cfg.shard.samples_per_shard,
        wd.version,
    )


def _count(stage: str, files: list[str], n_in: int | None = None) -> StageCount:
    """A stage's count read one file at a time: decided text parts' `reason`s, or raw download
    shards' img2dataset statuses (a debugging run that stops after that stage)."""
    counts = []
    for uri in files:
        if stage == "text":
            reasons = read_parquet(uri, columns=["reason"]).column("reason").to_pylist()
        else:
            t = read_parquet(uri, columns=["status", "error_message"])
            reasons = [download_reason(s, e) for s, e in zip(*(c.to_pylist() for c in t.columns))]
        counts.append(StageCount.of(stage, len(reasons), reasons).to_dict())
    if not counts:
        return StageCount(stage, n_in or 0, 0)
    total = StageCount.add(counts)
    if n_in is not None and total.n_in != n_in:
        raise RuntimeError(f"{stage}: {n_in} rows sent, {total.n_in} came back")
    return total


def _sample(wd: WorkDir, jobs: list[dict], images: list[dict], duplicates: str | None, per_reason: int) -> str:
    """The rejects sample: the rows `pick_sample` chooses, filled in by one `sample_part` task per part
    (each finds its thumbnails' image parts in one index file of the image parts' row ranges)."""
    picked = pick_sample([job["candidates"] for job in jobs], per_reason)
    rows = picked.column("row").to_pylist()
    index = wd.path("sample", "image-parts.parquet")
    columns = {"uri": pa.string(), "first_row": pa.int64(), "last_row": pa.int64()}
    write_parquet(index, pa.table({c: pa.array([m[c] for m in images], t) for c, t in columns.items()}))
    tasks = {}
    for i, job in enumerate(jobs):
        lo, hi = job["first_row"], job["first_row"] + job["rows"]
        mine = [r for r in rows if lo <= r < hi]
        if mine:
            tasks[f"{i:05d}"] = (
                {
                    "rows": mine,
                    "scores": job["scores"],
                    "text": job["text"],
                    "images": index,
                    "duplicates": duplicates,
                    "out": wd.path("sample", f"part-{i:05d}.parquet"),
                },
            )
    run_tasks(wd, "sample", tasks, sample_part, "rejects sample")
    out = wd.path("sample", "sample.parquet")
    parts = [read_parquet(t[0]["out"]) for t in tasks.values()]
    write_parquet(out, pa.concat_tables(parts).sort_by("row") if parts else SAMPLE_SCHEMA.empty_table())
    return out


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
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds
