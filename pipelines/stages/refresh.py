"""`refresh NAME`: publish the next version of a dataset with only the rows its source list gained.

The source list is re-read (from the config in the latest build version's manifest, or
the given config), streamed into part files as in a build. Rows whose key (`catalog.keys.sample_key(url)`; a text source's
`pipelines.stages.source.text_key(row, caption)`) is already in that version, kept or
rejected, were decided and are not redone (found by tasks: `pipelines.stages.newrows`, so no
key set is held by the driver); the other rows go through
the build's stages (`pipelines.stages.pipeline.run_stages`) with two global inputs:
 - `repeated_caption` counts the normalised caption over the WHOLE source list (old and
   new rows), so a caption crossing the limit of 10 only through new rows rejects the
   new rows (rows kept before stay kept: a decided row is not redone);
 - `dedup` treats the carried kept images (sha256 + pHash from the parent's kept.parquet)
   as kept ahead of every new image, so a new copy of an old image is `duplicate_image`.
The new version lists the parent's shards unchanged (by reference: same path, size and
sha256) followed by the new shards under `v{N}/shards/`; kept.parquet and rejects.parquet
cover all rows (carried + new); its funnel is the parent's plus the new rows', stage by
stage (`add_funnels`); `parents` is ["NAME@prev"]. Nothing new: nothing is published.
With an `augment:` section the new version's view version follows, as after a build.
Image-only and text-only datasets refresh the same way (a text source has no images to
de-duplicate against, an image source no captions to count); the source's modality must
be the base version's. The new rows keep their `source.keep_columns` (the re-read source
parts hold them; `run_stages` joins them onto the new kept samples' json), as in a build.
The parent's kept, rejects and scores tables are streamed into the new version one row
group at a time and read by the dedup and new-row tasks in slices: a refresh's driver, like
a build's, holds file names and counts.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import console, storage, versions
from catalog.cli import add_overrides
from catalog.config import apply_overrides, load_config, validate
from catalog.errors import UserError
from catalog.manifest import modality_of
from catalog.parquet import iter_row_groups, num_rows, read_parquet, read_schema
from catalog.raysession import ray_session
from catalog.reasons import REASONS
from catalog.scores import REJECTS_SAMPLE_FILE, SCORES_FILE
from pipelines.stages.config import BuildConfig
from pipelines.stages.funnel import ConservationError, funnel
from pipelines.stages.newrows import NewRows, new_rows
from pipelines.stages.outputs import IMAGE_COLUMNS, KEPT_COLUMNS, REJECT_COLUMNS, write_version
from pipelines.stages.pipeline import drop_workdir, finish, run_stages
from pipelines.stages.scores import merge_samples
from pipelines.stages.source import plan_source, split_source
from pipelines.stages.workdir import open_workdir


def latest_build_version(root: str, dataset: str) -> tuple[int, dict[str, Any]]:
    """(version, manifest) of the newest version published by a build or refresh (not a view version)."""
    for version in reversed(versions.version_numbers(root, dataset)):
        manifest = storage.read_json(storage.join(versions.version_uri(root, dataset, version), "manifest.json"))
        views = manifest.get("schema", {}).get("views", {})
        if "source" in manifest.get("config", {}) and not any(views.values()):
            return version, manifest
    raise versions.VersionNotFound(
        f"dataset {dataset!r}: no version built from a source list under {root}; run `build` first"
    )


def add_funnels(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The funnel of two disjoint sets of rows: `in`, `kept` and each reason added, stage by stage."""
    if [s["stage"] for s in a["stages"]] != [s["stage"] for s in b["stages"]]:
        raise ConservationError(
            f"cannot add funnels with stages {[s['stage'] for s in a['stages']]} and {[s['stage'] for s in b['stages']]}"
        )

    def add(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
        rejected = Counter(x["rejected"]) + Counter(y["rejected"])
        return {
            "in": x["in"] + y["in"],
            "kept": x["kept"] + y["kept"],
            "rejected": {r: rejected[r] for r in REASONS if rejected[r]},
        }

    stages = [{"stage": sa["stage"], **add(sa, sb)} for sa, sb in zip(a["stages"], b["stages"])]
    return {**add(a, b), "stages": stages}


def _carried(version_dir: str, columns: list[str]) -> tuple[str, str, pa.Schema]:
    """The parent's kept.parquet and rejects.parquet (read by tasks and streamed, never whole) and its kept schema."""
    kept_uri, rejects_uri = storage.join(version_dir, "kept.parquet"), storage.join(version_dir, "rejects.parquet")
    schema = read_schema(kept_uri)
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ValueError(
            f"{kept_uri}: columns {missing} missing (written by an older build); rebuild this dataset to refresh it"
        )
    return kept_uri, rejects_uri, pa.schema([schema.field(c) for c in columns])


def _renumbered(uri: str, source_rows: str, first_row: int) -> pa.Table:
    """A new part's table (`row` numbered from `first_row` over the new rows) with `row` = the place in the source list."""
    t = read_parquet(uri)
    placed = read_parquet(source_rows).column("source_row")
    return t.set_column(0, "row", pc.take(placed, pc.subtract(t.column("row"), first_row)))


def _sample_renumbered(sample: pa.Table, new: NewRows) -> pa.Table:
    """The new rows' rejects sample (a few hundred rows) with `row` = the place in the source list."""
    rows = sample.column("row").to_pylist()
    lookup: dict[int, int] = {}
    for part, uri in zip(new.parts, new.source_rows):
        lo, hi = part["first_row"], part["first_row"] + part["rows"]
        mine = [r for r in rows if lo <= r < hi]
        if mine:
            placed = read_parquet(uri).column("source_row").to_pylist()
            lookup.update({r: placed[r - lo] for r in mine})
    return sample.set_column(0, "row", pa.array([lookup[r] for r in rows], pa.int64()))


def run_refresh(cfg: BuildConfig, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Publish `cfg.dataset`'s next version with the source rows its latest build version lacks; None when none.

    Like a build, the driver holds file names and counts: the source is split into part files,
    the new rows are found by tasks (`pipelines.stages.newrows`), and the parent's tables are
    streamed into the new version's one row group at a time."""
    prev, parent = latest_build_version(cfg.root, cfg.dataset)
    modality = cfg.source.modality
    if modality != modality_of(parent):
        raise UserError(
            f"refresh: {cfg.dataset}@{prev} has modality {modality_of(parent)!r} but source.modality is {modality!r}; "
            "a refresh keeps a dataset's modality"
        )
    plan = plan_source(cfg.source)  # bad input fails here, before Ray or any write
    parent_dir = versions.version_uri(cfg.root, cfg.dataset, prev)
    columns = KEPT_COLUMNS + (IMAGE_COLUMNS if modality != "text" else [])
    kept_uri, rejects_uri, kept_schema = _carried(parent_dir, columns)
    ref = f"{cfg.dataset}@{prev}"
    config = cfg.to_dict()
    with ray_session(cfg.ray, console.job_log_path(cfg.root, cfg.dataset, "refresh")) as cpus:
        wd = open_workdir(cfg.root, cfg.dataset, {"refresh_of": ref, "config": config}, log)
        log(f"refresh: full log in {console.current_log() or 'the console (--verbose)'}")
        parts, files = split_source(cfg.source, plan, wd)
        new = new_rows(parts, kept_uri, rejects_uri, wd, modality != "image", cfg.filter.max_caption_chars)
        if new.new == 0:
            drop_workdir(wd)
            log(
                f"refresh: {ref}: all {new.total} rows of {plan.uri} are already decided; nothing new, nothing published"
            )
            return None
        log(f"refresh: {ref} -> v{wd.version}: {new.new} new of {new.total} rows in {plan.uri} ({cpus} CPUs)")
        prior = kept_uri if modality != "text" else None
        done = run_stages(new.parts, cfg, wd, cpus, log, repeat_hashes=new.earlier or None, prior_images=prior)
        f = add_funnels(parent["funnel"], funnel(done.counts))
        n_kept = num_rows(kept_uri) + sum(num_rows(uri) for uri, _ in done.kept)
        n_rejected = num_rows(rejects_uri) + sum(num_rows(uri) for uri in done.rejects)
        if f["in"] != n_kept + n_rejected or f["kept"] != n_kept or f["in"] != parent["funnel"]["in"] + new.new:
            raise ConservationError(
                f"refresh: funnel says {f['in']} rows ({f['kept']} kept) but the tables hold {n_kept} kept + {n_rejected} rejected"
            )

        def kept() -> Iterator[pa.Table]:
            yield from (t.select(columns) for t in iter_row_groups(kept_uri))
            yield from (t.select(columns).cast(kept_schema) for t in done.kept_tables())

        def rejects() -> Iterator[pa.Table]:
            yield from iter_row_groups(rejects_uri, REJECT_COLUMNS)
            yield from (read_parquet(uri, REJECT_COLUMNS) for uri in done.rejects)

        scores, sample = None, None
        if storage.exists(storage.join(parent_dir, SCORES_FILE)):  # (a parent from before scores has none)

            def scores() -> Iterator[pa.Table]:
                yield from iter_row_groups(storage.join(parent_dir, SCORES_FILE))
                for uri, rows, part in zip(done.scores, new.source_rows, new.parts, strict=True):
                    yield _renumbered(uri, rows, part["first_row"])

            old_sample = read_parquet(storage.join(parent_dir, REJECTS_SAMPLE_FILE))
            sample = merge_samples(
                [old_sample, _sample_renumbered(read_parquet(done.sample), new)], cfg.rejects.sample_per_reason
            )
        manifest = write_version(
            wd.out,
            dataset=cfg.dataset,
            version=wd.version,
            config=config,
            sources=files,
            funnel=f,
            kept=kept,
            rejects=rejects,
            shards=parent["shards"] + done.shards,
            scores=scores,
            sample=sample,
            parents=[ref],
            modality=modality,
        )
        log(
            f"refresh: {cfg.dataset}@{wd.version} = {ref} ({parent['samples']} samples carried) + {manifest['samples'] - parent['samples']} new samples"
        )
        finish(cfg, wd, f, manifest, log)
    return manifest


def refresh_config(name: str, root: str | None, config_path: str | None, overrides: list[str]) -> BuildConfig:
    """The config of a refresh: the given file, else the latest build version's resolved config; root and dataset forced."""
    if config_path is not None:
        cfg = load_config(BuildConfig, config_path, overrides)
        root = root or cfg.root
    else:
        root = root or "./data"
        _, manifest = latest_build_version(root, name)
        cfg = validate(
            BuildConfig, apply_overrides(manifest["config"], overrides), f"{name}@{manifest['version']} manifest config"
        )
    return cfg.model_copy(update={"root": root, "dataset": name})


def add_parser(subparsers: Any) -> None:
    text = "publish the next version of a dataset with the rows its source list gained (carries the rest by reference)"
    p = subparsers.add_parser("refresh", help=text, description=text)
    p.add_argument("name", metavar="NAME", help="dataset name")
    p.add_argument(
        "--root", default=None, help="datasets root (local path or s3://); default: the config's root, else ./data"
    )
    p.add_argument(
        "--config", default=None, help="build config YAML; default: the config stored in the latest version's manifest"
    )
    add_overrides(p, "source.urls=new.parquet")


def main(args: argparse.Namespace) -> int:
    run_refresh(refresh_config(args.name, args.root, args.config, args.overrides))
    return 0
