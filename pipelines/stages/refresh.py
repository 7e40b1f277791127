"""`refresh NAME`: publish the next version of a dataset with only the rows its source list gained.

The source list is re-read (from the config in the latest build version's manifest, or
the given config). Rows whose key (`catalog.keys.sample_key(url)`; a text source's
`pipelines.stages.source.text_key(row, caption)`) is already in that version, kept or
rejected, were decided and are not redone; the other rows go through
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
table holds them; `run_stages` joins them onto the new kept samples' json), as in a build.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog import console, storage, versions
from catalog.cli import add_overrides
from catalog.config import apply_overrides, load_config, validate
from catalog.errors import UserError
from catalog.manifest import modality_of
from catalog.parquet import read_parquet, write_parquet
from catalog.raysession import ray_session
from catalog.reasons import REASONS
from catalog.scores import REJECTS_SAMPLE_FILE, SCORES_FILE
from pipelines.stages.config import BuildConfig
from pipelines.stages.funnel import ConservationError, check_rows, funnel
from pipelines.stages.outputs import IMAGE_COLUMNS, KEPT_COLUMNS, REJECT_COLUMNS, write_version
from pipelines.stages.pipeline import Processed, finish, run_stages
from pipelines.stages.scores import merge_samples
from pipelines.stages.source import read_source, table_parts
from pipelines.stages.text import caption_hashes
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


def _carried(version_dir: str, columns: list[str]) -> tuple[pa.Table, pa.Table]:
    kept_uri = storage.join(version_dir, "kept.parquet")
    kept = read_parquet(kept_uri)
    missing = [c for c in columns if c not in kept.column_names]
    if missing:
        raise ValueError(
            f"{kept_uri}: columns {missing} missing (written by an older build); rebuild this dataset to refresh it"
        )
    return kept.select(columns), read_parquet(storage.join(version_dir, "rejects.parquet")).select(REJECT_COLUMNS)


def _carried_scores(
    parent_dir: str, done: Processed, source_rows: pa.Array, per_reason: int
) -> tuple[pa.Table | None, pa.Table | None]:
    """The parent's scores + the new rows' (their `row` = place in the refreshed source list), and the
    merged rejects sample; None for both when the parent predates scores (its rows have none)."""
    if not storage.exists(storage.join(parent_dir, SCORES_FILE)):
        return None, None

    def renumber(t: pa.Table) -> pa.Table:
        return t.set_column(0, "row", pc.take(source_rows, t.column("row")))

    new_scores = pa.concat_tables([read_parquet(u) for u in done.scores])
    scores = pa.concat_tables([read_parquet(storage.join(parent_dir, SCORES_FILE)), renumber(new_scores)])
    old_sample = read_parquet(storage.join(parent_dir, REJECTS_SAMPLE_FILE))
    return scores, merge_samples([old_sample, renumber(read_parquet(done.sample))], per_reason)


def run_refresh(cfg: BuildConfig, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Publish `cfg.dataset`'s next version with the source rows its latest build version lacks; None when none."""
    prev, parent = latest_build_version(cfg.root, cfg.dataset)
    modality = cfg.source.modality
    if modality != modality_of(parent):
        raise UserError(
            f"refresh: {cfg.dataset}@{prev} has modality {modality_of(parent)!r} but source.modality is {modality!r}; "
            "a refresh keeps a dataset's modality"
        )
    parent_dir = versions.version_uri(cfg.root, cfg.dataset, prev)
    columns = KEPT_COLUMNS + (IMAGE_COLUMNS if modality != "text" else [])
    old_kept, old_rejects = _carried(parent_dir, columns)
    decided = set(old_kept.column("key").to_pylist()) | set(old_rejects.column("key").to_pylist())
    source = read_source(cfg.source)
    is_new = pa.array([k not in decided for k in source.keys()])
    n_new = pc.sum(is_new).as_py() or 0
    ref = f"{cfg.dataset}@{prev}"
    if n_new == 0:
        log(
            f"refresh: {ref}: all {source.table.num_rows} rows of {source.uri} are already decided; nothing new, nothing published"
        )
        return None
    new_rows = source.table.filter(is_new)
    source_rows = new_rows.column("row")  # each new row's place in the source list
    new_rows = new_rows.set_column(0, "row", pa.array(range(n_new), pa.int64()))  # the stages number rows 0..n-1
    config = cfg.to_dict()
    with ray_session(cfg.ray, console.job_log_path(cfg.root, cfg.dataset, "refresh")) as cpus:
        wd = open_workdir(cfg.root, cfg.dataset, {"refresh_of": ref, "config": config}, log)
        log(
            f"refresh: {ref} -> v{wd.version}: {n_new} new of {source.table.num_rows} rows in {source.uri} ({cpus} CPUs)"
        )
        log(f"refresh: full log in {console.current_log() or 'the console (--verbose)'}")
        prior = old_kept.select(["key", *IMAGE_COLUMNS]) if modality != "text" else None
        hashes = None
        if modality != "image":  # the repeat count covers the whole source list: the decided rows too
            hashes = [wd.path("repeat", "earlier-rows.parquet")]
            old_captions = source.table.filter(pc.invert(is_new)).column("caption").to_pylist()
            write_parquet(hashes[0], caption_hashes(old_captions, cfg.filter))
        parts = table_parts(new_rows, wd)
        done = run_stages(parts, cfg, wd, cpus, log, repeat_hashes=hashes, prior_images=prior)
        new_kept = done.kept_table()
        new_rejects = pa.concat_tables([read_parquet(u) for u in done.rejects])
        check_rows(n_new, new_kept.column("row").to_pylist(), new_rejects.column("row").to_pylist())
        f = add_funnels(parent["funnel"], funnel(done.counts))
        kept = pa.concat_tables([old_kept, new_kept.select(columns).cast(old_kept.schema)])
        rejects = pa.concat_tables([old_rejects, new_rejects.select(REJECT_COLUMNS).cast(old_rejects.schema)])
        if f["in"] != kept.num_rows + rejects.num_rows or f["kept"] != kept.num_rows:
            raise ConservationError(
                f"refresh: funnel says {f['in']} rows ({f['kept']} kept) but the tables hold {kept.num_rows} kept + {rejects.num_rows} rejected"
            )
        scores, sample = _carried_scores(parent_dir, done, source_rows, cfg.rejects.sample_per_reason)
        manifest = write_version(
            wd.out,
            dataset=cfg.dataset,
            version=wd.version,
            config=config,
            sources=source.files,
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
