"""Every row's fate from its recorded scores: the build's decisions, replayed without a model or a download.

`Replay(cfg)` holds the checks a build config selects, in `catalog.reasons` check order,
and decides one row from its `scores.parquet` row (`catalog.scores.COLUMNS`) the way the
build's stages do:
 - text: every selected text filter's `decide` on the row's scores (`repeated_caption` on
   `repeat_count`); an image source has no text checks;
 - download: img2dataset's recorded status (`download_reason`), and its pixel limit
   (`too_many_pixels`, applied by img2dataset on the original size: a row over a new
   limit is rejected at `download`, as a rebuild would);
 - image: `ImageChecks.decide` on the original size and whether the bytes decoded;
 - dedup: `dedup.representatives` over the rows that reach it, by the same rule as the
   build (the smallest key survives).
A row whose fate needs a score the build never measured (a row rejected by its text
checks was never downloaded; a check turned off was never scored) gets the fate `UNKNOWN`
with the missing score named: only a real build can decide it.

`checks(scores)` lists every check with its scores, thresholds and verdict, for
`python -m pipelines explain`; `fates(table)` decides a whole scores table, for
`python -m pipelines whatif` (and must agree with what a rebuild decides: tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from catalog import storage, versions
from catalog.config import validate
from catalog.errors import UserError
from catalog.parquet import read_parquet
from catalog.reasons import STAGE_OF
from catalog.scores import SCORES_FILE
from pipelines.filters.base import Filter
from pipelines.stages.config import BuildConfig
from pipelines.stages.dedup import representatives
from pipelines.stages.download import download_reason
from pipelines.stages.image import DECODE, ImageChecks

UNKNOWN = "unknown"  # the fate of a row whose deciding scores were never measured


@dataclass
class Check:
    """One check of one row: what it read, what it compared with, what it answered."""

    name: str
    stage: str
    scores: dict[str, Any]
    thresholds: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # the reason it rejects with; None: it keeps the row
    missing: tuple[str, ...] = ()  # scores it needs that were never measured

    @property
    def verdict(self) -> str:
        return "unknown" if self.missing else ("keep" if self.reason is None else "reject")


class Replay:
    """The checks of one build config, deciding rows from their recorded scores (module docstring).

    `built`: the config the scores were recorded under (default `cfg`); its pixel limit says
    which rows img2dataset refused unseen (a larger limit now would need them fetched).
    """

    def __init__(self, cfg: BuildConfig, built: BuildConfig | None = None) -> None:
        self.cfg = cfg
        self.modality = cfg.source.modality
        self.text: list[Filter] = [] if self.modality == "image" else cfg.filter.filters("text")
        self.images = ImageChecks(cfg.filter) if self.modality != "text" else None
        self.max_pixels = _max_pixels(cfg)
        self.built_max_pixels = _max_pixels(built or cfg)
        unrecorded = [f.name for f in self.filters() if not f.records_scores()]
        if unrecorded:
            raise UserError(
                f"filters {', '.join(unrecorded)} record no scores (they define keep() only): "
                "their verdicts cannot be replayed; give them score() and decide() (docs/extending.md)"
            )

    def filters(self) -> list[Filter]:
        image = [] if self.images is None else self.images.before + self.images.after
        return [*self.text, *image]

    def checks(self, scores: dict[str, Any]) -> list[Check]:
        """Every check of the row up to dedup, in order, each with its verdict on `scores`."""
        out = [_filter_check(f, scores) for f in self.text]
        if self.images is None:
            return out
        out.append(self._download(scores))
        out += [_filter_check(f, scores) for f in self.images.before]
        decoded = scores.get("decoded")
        out.append(
            Check(
                DECODE,
                "image",
                {"decoded": decoded},
                reason=DECODE if decoded is False else None,
                missing=("decoded",) if decoded is None else (),
            )
        )
        out += [_filter_check(f, scores) for f in self.images.after]
        return out

    def _download(self, scores: dict[str, Any]) -> Check:
        status, error = scores.get("download_status"), scores.get("download_error")
        got = {"download_status": status, "download_error": error}
        limit = {"max_image_area": self.max_pixels}
        if status is None:  # never sent to img2dataset (rejected before, or a text-only build)
            return Check("download", "download", got, limit, missing=("download_status",))
        reason = download_reason(status, error)
        w, h = scores.get("orig_width"), scores.get("orig_height")
        if reason is None and w is not None and h is not None and w * h > self.max_pixels:
            reason = "too_many_pixels"  # img2dataset's pixel limit, on the original size
        if reason == "too_many_pixels" and status != "success" and self.max_pixels > self.built_max_pixels:
            # refused unseen under the old limit; under a larger one it would be fetched
            return Check("download", "download", got, limit, missing=("orig_width", "orig_height"))
        return Check("download", "download", got, limit, reason)

    def fate(self, scores: dict[str, Any]) -> tuple[str | None, str | None, list[Check]]:
        """(reason, stage, checks) of one row before dedup: the first rejecting check, `UNKNOWN`
        when a check before it could not be decided, (None, None) when every check keeps it."""
        checks = self.checks(scores)
        for c in checks:
            if c.missing:
                return UNKNOWN, c.stage, checks
            if c.reason is not None:
                return c.reason, "download" if c.name == "download" else STAGE_OF[c.reason], checks
        return None, None, checks

    def fates(self, table: pa.Table) -> list[tuple[str | None, str | None]]:
        """(reason, stage) of every row of a scores table, dedup included (`UNKNOWN` where undecidable).

        Dedup runs over the rows every other check keeps; an `UNKNOWN` row that a rebuild would
        download is not among them (its pHash was never measured), which `whatif` reports.
        """
        rows = table.to_pylist()
        out = [self.fate(r)[:2] for r in rows]
        alive = [i for i, (reason, _) in enumerate(out) if reason is None]
        if self.images is not None and self.cfg.dedup.enabled and alive:
            reps = representatives(
                [rows[i]["key"] for i in alive],
                [rows[i]["row"] for i in alive],
                [rows[i]["sha256"] for i in alive],
                [int(rows[i]["phash"], 16) for i in alive],
                self.cfg.dedup.max_hamming,
            )
            for i, rep in zip(alive, reps):
                if rep is not None:
                    out[i] = ("duplicate_image", "dedup")
        return out


def _max_pixels(cfg: BuildConfig) -> float:
    pixels = cfg.filter.options("too_many_pixels")
    return pixels.max_pixels if pixels else float("inf")


def _filter_check(f: Filter, scores: dict[str, Any]) -> Check:
    got = {name: scores.get(name) for name in f.scores}
    missing = tuple(name for name, value in got.items() if value is None)
    reason = None
    if not missing:
        verdict = f.decide(got)
        reason = None if verdict is True else verdict[1]
    return Check(f.name, f.stage(), got, f.thresholds(), reason, missing)


@dataclass
class Built:
    """A published build version with what `whatif` / `explain --row` replay on."""

    ref: str  # NAME@N
    root: str
    manifest: dict[str, Any]
    cfg: BuildConfig  # the config it was built with
    scores: pa.Table  # catalog.scores.SCHEMA, one row per input row

    def version_file(self, name: str) -> str:
        return storage.join(versions.version_uri(self.root, self.manifest["dataset"], self.manifest["version"]), name)


def load_built(root: str, ref: str) -> Built:
    """The version `ref` under `root`, with its stored config and scores; a clear error when it has none."""
    name, version = versions.resolve(root, ref)
    manifest = versions.load_manifest(root, f"{name}@{version}")
    ref = f"{name}@{version}"
    if "source" not in manifest.get("config", {}):
        raise UserError(f"{ref} was not built from a source list (a view version?): nothing to replay")
    if manifest.get("parents"):
        raise UserError(
            f"{ref} is a refresh of {', '.join(manifest['parents'])}: replay the build version it started from"
        )
    uri = storage.join(versions.version_uri(root, name, version), SCORES_FILE)
    if not storage.exists(uri):
        raise UserError(f"{ref}: no {SCORES_FILE} (built before per-row scores were recorded); rebuild it")
    cfg = validate(BuildConfig, manifest["config"], f"{ref} manifest config")
    return Built(ref, root, manifest, cfg, read_parquet(uri))
