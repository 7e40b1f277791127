"""The build job's typed config (one YAML per dataset build; every key documented in docs/pipeline.md)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from augment.config import AugmentConfig
from catalog.config import Config
from catalog.raysession import RayConfig
from pipelines.filters.config import FilterConfig


class SourceConfig(Config):
    """The input URL list: one file (local or s3://) with a URL and a caption column."""

    urls: str
    url_col: str = "url"
    caption_col: str = "caption"
    # None: from the file name (.parquet, .csv, .tsv). "tsv_headerless" reads CC3M-style
    # files whose rows are `caption<TAB>url` without a header (url_col/caption_col ignored).
    format: Optional[Literal["parquet", "csv", "tsv", "tsv_headerless"]] = None


class DownloadConfig(Config):
    """img2dataset settings (distributor="ray"; resize keeps the aspect ratio)."""

    image_size: int = Field(256, gt=0)
    resize_only_if_bigger: bool = True
    encode_quality: int = Field(95, ge=1, le=100)
    thread_count: int = Field(32, gt=0)
    timeout: int = Field(10, gt=0)
    retries: int = Field(0, ge=0)
    samples_per_shard: int = Field(1000, gt=0)


class DedupConfig(Config):
    """Image de-duplication: exact content hash, plus pHash within `max_hamming` bits."""

    max_hamming: int = Field(6, ge=-1, le=63)  # -1 disables near-duplicate detection


class ShardConfig(Config):
    samples_per_shard: int = Field(10_000, gt=0)
    seed: int = 0


class BuildConfig(Config):
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    root: str = "./data"
    source: SourceConfig
    download: DownloadConfig = DownloadConfig()
    # Every check (text and image) with its options; the image limits also go to img2dataset.
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = DedupConfig()
    shard: ShardConfig = ShardConfig()
    ray: RayConfig = RayConfig()
    keep_work: bool = False  # keep .work/v{N}/ (raw download shards, markers) after success
    # Present: after publishing the clean version v{N}, `pipelines.views.job.augment_version` publishes
    # its view version v{N+1} (parent NAME@N). Keys: augment/config.py.
    augment: Optional[AugmentConfig] = None
