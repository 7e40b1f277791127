"""Stage `download`: img2dataset (distributor="ray") over the text survivors only.

Its input is a folder with one parquet of `url` + `row` (our input row id) per text part:
captions never reach img2dataset, so none is in its raw shards, stats or logs. Settings: `resize_mode=
"keep_ratio"` (shorter side to `download.image_size`), `resize_only_if_bigger` (default
on: a 210 px image is kept as is instead of being upscaled to 256), JPEG; its
limits apply on the
original size, behind our header probe (`pipelines.stages.probe`): only `max_image_area`
(the `too_many_pixels` limit: a decompression bomb is refused before any decode). The size
and aspect-ratio checks are the image stage's alone (`img2dataset_limits`): img2dataset
fetches the bytes before it checks sizes anyway, and an image it keeps has its original
size, decode and pHash recorded, so `whatif` can replay `min_size`/`max_ratio` both ways
and the rejects sample shows a thumbnail. Output format "parquet": one raw shard per `download.samples_per_shard` rows,
every row with its status, the original width/height and the sha256 of the downloaded bytes.

Resume is img2dataset's own `incremental_mode="incremental"` (a shard with a
`NNNNN_stats.json` is done); the stage marker is written once every shard has one. The
image stage checks each shard as soon as it is done (`complete_shards`), while the rest
download (`pipelines.stages.image.ImageStage`).
"""

from __future__ import annotations

import math
import threading

import pyarrow.compute as pc

from catalog import storage
from catalog.console import progress, stdout_to_log
from catalog.parquet import read_parquet, write_parquet
from pipelines.filters.config import FilterConfig
from pipelines.stages.config import BuildConfig
from pipelines.stages.parts import run_tasks
from pipelines.stages.workdir import WorkDir

# img2dataset's error message for an image over the pixel limit (`pipelines.stages.probe` writes it).
# The probe module imports img2dataset (and with it torch: seconds): only the download itself loads it,
# not every Ray worker that imports this module for `META` or `download_reason`.
TOO_MANY_PIXELS = "too many pixels"
META = ["row", "status", "error_message", "width", "height", "original_width", "original_height", "sha256"]
_RESIZE_ERRORS = {  # img2dataset's resizer error messages -> our reasons
    TOO_MANY_PIXELS: "too_many_pixels",
    "image area too large": "too_many_pixels",
    "image too small": "image_too_small",
    "aspect ratio too large": "aspect_ratio",
}


def download_reason(status: str, error: str | None) -> str | None:
    """Map img2dataset's per-row status/error_message onto a reason (None = downloaded)."""
    if status == "success":
        return None
    if status == "failed_to_download":
        return "download_failed"
    return _RESIZE_ERRORS.get(error or "", "not_an_image")


def img2dataset_limits(cfg: FilterConfig) -> dict[str, float]:
    """img2dataset's size limits: only the pixel limit of `too_many_pixels` (module docstring)."""
    pixels = cfg.options("too_many_pixels")
    return {
        "min_image_size": 0,
        "max_aspect_ratio": float("inf"),
        "max_image_area": pixels.max_pixels if pixels else float("inf"),
    }


def raw_dir(wd: WorkDir) -> str:
    return wd.path("download", "raw")


def _listdir_fresh(uri: str) -> list[str]:
    """storage.listdir without fsspec's cached listing (img2dataset's Ray tasks write here, not us)."""
    fs, path = storage.filesystem(uri)
    fs.invalidate_cache(path)
    return storage.listdir(uri)


def raw_shards(wd: WorkDir) -> list[str]:
    return [storage.join(raw_dir(wd), n) for n in _listdir_fresh(raw_dir(wd)) if n.endswith(".parquet")]


def complete_shards(wd: WorkDir) -> list[str]:
    """The raw shards img2dataset has finished (those with a stats file), in name order."""
    raw = raw_dir(wd)
    names = set(_listdir_fresh(raw)) if storage.exists(raw) else set()
    done = sorted(n.removesuffix("_stats.json") + ".parquet" for n in names if n.endswith("_stats.json"))
    return [storage.join(raw, n) for n in done if n in names]


def _survivors_task(text_part: str, out: str) -> dict:
    t = read_parquet(text_part, columns=["row", "url", "reason"])
    t = t.filter(pc.is_null(t.column("reason"))).select(["url", "row"])
    if t.num_rows:
        write_parquet(out, t)
    return {"rows": t.num_rows}


def run_download(text_parts: list[str], cfg: BuildConfig, wd: WorkDir) -> tuple[list[str], int]:
    """Download the rows every decided text part passed; returns (the raw shards, rows sent).

    img2dataset reads a folder with one input file per text part (the passed rows' url + row)
    and shards each file on its own, so a raw shard holds consecutive rows of one part."""
    inputs = [wd.path("download", "input", f"part-{i:05d}.parquet") for i in range(len(text_parts))]
    counts = run_tasks(
        wd,
        "download-input",
        {f"{i:05d}": (u, inputs[i]) for i, u in enumerate(text_parts)},
        _survivors_task,
        "download input",
    )
    sizes = [c["rows"] for c in counts.values()]
    per = cfg.download.samples_per_shard
    n_shards = sum(math.ceil(n / per) for n in sizes)
    if n_shards and not wd.done("download"):
        for _ in range(2):  # the ray distributor does not retry a failed shard; one rerun does
            _img2dataset(wd.path("download", "input"), cfg, wd, n_shards)
            if _stats_count(wd) >= n_shards:
                break
        if _stats_count(wd) < n_shards:
            raise RuntimeError(
                f"download: only {_stats_count(wd)} of {n_shards} img2dataset shards finished; re-run the build"
            )
        wd.mark("download", {"shards": n_shards, "rows": sum(sizes)})
    return (raw_shards(wd) if n_shards else []), sum(sizes)


def _img2dataset(input_uri: str, cfg: BuildConfig, wd: WorkDir, n_shards: int) -> None:
    from img2dataset import download

    from pipelines.stages.probe import header_probe

    d = cfg.download
    stop = threading.Event()
    # img2dataset prints its own progress (in this process and in its logger subprocess):
    # into the job's log with Ray's, while lipforge's bar goes to the console
    with stdout_to_log() as out:
        bar = progress(total=n_shards, desc="download", unit="shard", file=out)
        watcher = threading.Thread(target=_follow, args=(wd, bar, stop), daemon=True)
        watcher.start()
        try:
            with header_probe():
                download(
                    url_list=input_uri,
                    output_folder=raw_dir(wd),
                    input_format="parquet",
                    url_col="url",
                    caption_col=None,
                    save_additional_columns=["row"],
                    output_format="parquet",
                    distributor="ray",
                    image_size=d.image_size,
                    resize_mode="keep_ratio",
                    resize_only_if_bigger=d.resize_only_if_bigger,
                    encode_format="jpg",
                    encode_quality=d.encode_quality,
                    thread_count=d.thread_count,
                    number_sample_per_shard=d.samples_per_shard,
                    timeout=d.timeout,
                    retries=d.retries,
                    extract_exif=False,
                    compute_hash="sha256",
                    **img2dataset_limits(cfg.filter),
                    incremental_mode="incremental",
                    enable_wandb=False,
                )
        finally:
            stop.set()
            watcher.join()
            bar.close()


def _stats_count(wd: WorkDir) -> int:
    return len(complete_shards(wd))


def _follow(wd: WorkDir, bar, stop: threading.Event) -> None:
    """Advance the download bar as img2dataset's shards finish (each writes a stats file)."""
    while True:
        bar.update(_stats_count(wd) - bar.n)
        if stop.wait(2.0):
            bar.update(_stats_count(wd) - bar.n)
            return
