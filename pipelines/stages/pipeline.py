"""The build: source -> text -> download -> image -> dedup -> shard -> published version.

By `source.modality`: a pair source runs every stage; an image source (no captions) passes
every row through `text` unchecked, then runs the rest; a text source (no URLs) runs
`text` then `shard` (no download, image or dedup stage). Each stage returns one outcome
row per input row (`reason` null = passed on), so the accounting is exact: the funnel is
checked per stage and overall, and every input row must end in exactly one of
kept.parquet / rejects.parquet, or the build fails before anything is published.
The source columns of `source.keep_columns` (`keep.NAME` in the source table) stay out of
the stages and are joined by row onto the kept samples, whose json carries them.
Re-running with the same config resumes the unfinished version.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import console, storage
from catalog.errors import UserError
from catalog.raysession import ray_session
from pipelines.stages.config import BuildConfig
from pipelines.stages.dedup import count_dedup, pass_dedup, run_dedup
from pipelines.stages.download import count_download, run_download
from pipelines.stages.funnel import StageCount, check_rows, funnel, summary_table
from pipelines.stages.image import count_image, run_image
from pipelines.stages.outputs import write_version
from pipelines.stages.scores import rejects_sample, score_table
from pipelines.stages.shard import run_shards
from pipelines.stages.source import kept_fields, read_source
from pipelines.stages.text import count_text, pass_text, run_text
from pipelines.stages.workdir import WorkDir, open_workdir
from pipelines.views.job import augment_version


def passed(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_null(table.column("reason")))


def rejected(table: pa.Table, stage: str) -> pa.Table:
    t = table.filter(pc.is_valid(table.column("reason")))
    return pa.table(
        {"row": t.column("row"), "stage": pa.array([stage] * t.num_rows, pa.string()), "reason": t.column("reason")}
    )


STAGES = ("filter", "download")  # stages a debugging run may stop after


@dataclass
class Processed:
    """The outcome of running the stages over a set of input rows (`row` 0..n-1)."""

    counts: list[StageCount]
    kept: pa.Table  # one row per kept sample, in shard order, with its `shard` path
    rejects: pa.Table  # row, key, url, stage, reason
    shards: list[dict[str, Any]]
    scores: pa.Table  # every input row's scores (catalog.scores.SCHEMA)
    sample: pa.Table  # the rejects sample (catalog.scores.SAMPLE_SCHEMA)


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
    source = read_source(cfg.source)  # bad input fails here, before Ray or any write
    storage.check_reachable(cfg.root)
    config = cfg.to_dict()
    log_path = console.job_log_path(cfg.root, cfg.dataset, "build")
    with ray_session(cfg.ray, log_path) as cpus:
        wd = open_workdir(cfg.root, cfg.dataset, config, log)
        rows = f"{source.table.num_rows} rows" + ("" if modality == "pair" else f", {modality} only")
        log(f"build: {cfg.dataset} v{wd.version} from {source.uri} ({rows}, {cpus} CPUs)")
        log(f"build: full log in {console.current_log() or 'the console (--verbose)'}")
        clock = _Clock(timings if timings is not None else {})
        done = run_stages(source.table, cfg, wd, cpus, log, stop_after, clock)
        if done is None:
            return None
        f = funnel(done.counts)
        check_rows(source.table.num_rows, done.kept.column("row").to_pylist(), done.rejects.column("row").to_pylist())
        manifest = write_version(
            wd.out,
            dataset=cfg.dataset,
            version=wd.version,
            config=config,
            sources=[source.manifest_entry()],
            funnel=f,
            kept=done.kept,
            rejects=done.rejects,
            shards=done.shards,
            modality=modality,
            scores=done.scores,
            sample=done.sample,
        )
        finish(cfg, wd, f, manifest, log, clock)
    return manifest


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
        storage.remove(wd.work, recursive=True)
    log(summary_table(f))
    log(f"build: published {wd.out} ({manifest['samples']} samples in {len(manifest['shards'])} shards)")
    if cfg.augment is not None:
        with (clock or _Clock({}))("augment"):
            views = augment_version(cfg.root, cfg.dataset, wd.version, cfg.augment)
        log(f"build: published views {cfg.dataset}@{views} (parent {cfg.dataset}@{wd.version})")


def run_stages(
    rows: pa.Table,
    cfg: BuildConfig,
    wd: WorkDir,
    cpus: int,
    log: Callable[[str], None] = print,
    stop_after: str | None = None,
    clock: _Clock | None = None,
    repeat_counts: Counter | None = None,
    prior_images: pa.Table | None = None,
) -> Processed | None:
    """text -> download -> image -> dedup -> shard over `rows` (the source table, row 0..n-1).

    By `cfg.source.modality`: "pair" runs them all; "image" (rows without captions) passes
    every row through `text` unchecked; "text" (rows without URLs) runs text -> shard.
    `repeat_counts` (a refresh): the repeated-caption count over a larger input than
    `rows`; `prior_images` (sha256, phash of images already kept): new images duplicating
    one of them are `duplicate_image`.
    """
    clock = clock or _Clock({})
    modality = cfg.source.modality
    carried = rows.select(["row", *kept_fields(rows)])  # source.keep_columns, joined onto the kept samples
    rows = rows.drop_columns(kept_fields(rows))
    with clock("text"):
        text = pass_text(rows) if modality == "image" else run_text(rows, cfg.filter, wd, cpus, repeat_counts)
    n = rows.num_rows
    if stop_after == "filter":
        log(summary_table(funnel([StageCount("source", n, n), count_text(text)])))
        return None
    if modality == "text":
        with clock("shard"):
            kept, shards = run_shards(text_samples(passed(text), carried), cfg.shard, wd, modality)
        counts = [
            StageCount("source", n, n),
            count_text(text),
            StageCount("shard", kept.num_rows, sum(s["samples"] for s in shards)),
        ]
        rejects = _rejects(text, [(text, "text")])
        scores = score_table(text, rejects)
        sample = rejects_sample(scores, text, None, cfg.rejects.sample_per_reason)
        return Processed(counts, kept, rejects, shards, scores, sample)
    with clock("download"):
        dl = run_download(passed(text).select(["row", "url"]), cfg, wd)
    if stop_after == "download":
        log(
            summary_table(funnel([StageCount("source", n, n), count_text(text), count_download(dl, len(passed(text)))]))
        )
        return None
    with clock("image"):
        img = run_image(dl, cfg.filter, wd, cpus)
    candidates = _join(passed(img).select(["row", "phash"]), text.select(["row", "key"]), dl.select(["row", "sha256"]))
    with clock("dedup"):
        if cfg.dedup.enabled:
            dd = run_dedup(candidates, cfg.dedup.max_hamming, prior_images)
        else:
            dd = pass_dedup(candidates)
    kept = kept_samples(passed(dd), text, dl, img, carried)
    with clock("shard"):
        kept, shards = run_shards(kept, cfg.shard, wd, modality)
    counts = [
        StageCount("source", n, n),
        count_text(text),
        count_download(dl, len(passed(text))),
        count_image(img, len(passed(dl))),
        count_dedup(dd),
        StageCount("shard", kept.num_rows, sum(s["samples"] for s in shards)),
    ]
    rejects = _rejects(text, [(text, "text"), (dl, "download"), (img, "image"), (dd, "dedup")])
    scores = score_table(text, rejects, dl, img, dd)
    sample = rejects_sample(scores, text, dl, cfg.rejects.sample_per_reason)
    return Processed(counts, kept, rejects, shards, scores, sample)


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


def kept_samples(
    survivors: pa.Table, text: pa.Table, dl: pa.Table, img: pa.Table, carried: pa.Table | None = None
) -> pa.Table:
    """Everything a shard member needs about each kept row (jpg bytes stay in the raw shards);
    `carried`: (row, keep.NAME ...) of the source, for the json."""
    t = _join(
        survivors.select(["row"]),
        sample_text_fields(text),
        dl.select(["row", "width", "height", "original_width", "original_height", "sha256", "raw"]),
        img.select(["row", "phash"]),
        *([carried] if carried is not None and carried.num_columns > 1 else []),
    )
    return t.rename_columns(
        [{"original_width": "orig_width", "original_height": "orig_height"}.get(c, c) for c in t.column_names]
    )


def text_samples(survivors: pa.Table, carried: pa.Table | None = None) -> pa.Table:
    """Everything a text-only shard member and kept.parquet need about each kept text row (no image facts);
    `carried`: (row, keep.NAME ...) of the source, for the json."""
    t = sample_text_fields(survivors)
    for name in ("orig_width", "orig_height"):
        t = t.append_column(name, pa.nulls(t.num_rows, pa.int32()))
    if carried is not None and carried.num_columns > 1:
        t = _join(t, carried)
    return t.sort_by("row")


def sample_text_fields(text: pa.Table) -> pa.Table:
    """(row, key, url, caption) + the sample json's text fields of kept rows: `lang` "en" (every kept
    caption passed `not_english`; "" when the check is off), `lang_score` fastText's English
    probability and `english_ratio`, both rounded to 4 digits (null when not computed)."""
    en = text.column("lang_en_prob")
    lang = pc.if_else(pc.is_valid(en), "en", "")
    out = text.select(["row", "key", "url", "caption"])
    for name, values in (
        ("lang", lang),
        ("lang_score", pc.round(en, 4)),
        ("english_ratio", pc.round(text.column("english_ratio"), 4)),
        ("person_substituted", text.column("person_substituted")),
    ):
        out = out.append_column(name, values)
    return out


def _join(first: pa.Table, *others: pa.Table) -> pa.Table:
    out = first
    for other in others:
        out = out.join(other, keys="row", join_type="left outer")
    return out.sort_by("row")


def _rejects(text: pa.Table, stages: list[tuple[pa.Table, str]]) -> pa.Table:
    parts = pa.concat_tables([rejected(t, stage) for t, stage in stages])
    return _join(parts, text.select(["row", "key", "url"])).select(["row", "key", "url", "stage", "reason"])
