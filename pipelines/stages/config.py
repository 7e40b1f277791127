"""The build job's typed config (one YAML per dataset build; every key documented in docs/pipeline.md)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from augment.config import AugmentConfig
from catalog.config import Config
from catalog.raysession import RayConfig
from catalog.scores import DEFAULT_SAMPLE_PER_REASON
from pipelines.filters.config import FilterConfig

Modality = Literal["pair", "image", "text"]  # = catalog.manifest.VERSION_MODALITIES
# Source formats each modality reads (CC3M's headerless tsv holds pairs; .txt holds captions).
FORMATS: dict[str, tuple[str, ...]] = {
    "pair": ("parquet", "csv", "tsv", "tsv_headerless"),
    "image": ("parquet", "csv", "tsv"),
    "text": ("parquet", "csv", "tsv", "txt"),
}


# A source column kept under a name the sample json already uses would overwrite it; the
# augment job adds `views` (the view recipes) to the same json.
VIEW_RECIPES_FIELD = "views"


class SourceConfig(Config):
    """The input list: one file, a folder of list files or a glob of them (local or s3://), or
    a local folder of images with a caption table (`pipelines.stages.source`). `modality` says what its rows are: "pair" (a URL and
    a caption column), "image" (a URL column only: an image-only version) or "text" (a
    caption column, or a .txt file of one caption per line: a text-only version).
    `keep_columns`: source columns carried into each kept sample's json under their own name."""

    urls: str
    modality: Modality = "pair"
    url_col: str = "url"  # not read for modality "text"
    caption_col: str = "caption"  # not read for modality "image"
    # None: from the file name (.parquet, .csv, .tsv; .txt for text). "tsv_headerless" reads CC3M-style
    # files whose rows are `caption<TAB>url` without a header (url_col/caption_col ignored).
    format: Optional[Literal["parquet", "csv", "tsv", "tsv_headerless", "txt"]] = None
    # A folder source: the caption table's file name inside it (default: the one of
    # captions.tsv, captions.csv, captions.parquet that exists).
    caption_table: Optional[str] = Field(None, min_length=1)
    keep_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fits_modality(self) -> SourceConfig:
        """A format or column the modality does not read is a mistake, not something to ignore silently."""
        if self.format is not None and self.format not in FORMATS[self.modality]:
            raise key_error(
                ("format",),
                f"modality {self.modality!r} reads only {', '.join(FORMATS[self.modality])}",
                self.format,
            )
        unread = {"image": ("caption_col", "caption"), "text": ("url_col", "url")}.get(self.modality)
        if unread and getattr(self, unread[0]) != unread[1]:
            raise key_error(
                (unread[0],),
                f"not read: modality {self.modality!r} has no {unread[1]} column; remove the key, or set source.modality: pair",
                getattr(self, unread[0]),
            )
        self._check_keep_columns()
        return self

    def _check_keep_columns(self) -> None:
        """Each kept column once, none that the json already has or that would write a raw caption."""
        keep = self.keep_columns
        if not keep:
            return
        from pipelines.stages.shard import JSON_FIELDS  # the json's built-in fields live with its writer

        if self.format in ("tsv_headerless", "txt"):
            raise key_error(("keep_columns",), f"a {self.format} source has no other columns to keep", keep)
        for i, name in enumerate(keep):
            if not name:
                raise key_error(("keep_columns",), f"entry {i} is an empty column name", keep)
            if name in keep[:i]:
                raise key_error(("keep_columns",), f"column {name!r} is listed twice", keep)
            builtin = (*JSON_FIELDS[self.modality], VIEW_RECIPES_FIELD)
            if name in builtin:
                raise key_error(
                    ("keep_columns",),
                    f"{name!r} is a built-in field of the sample json ({', '.join(builtin)}); "
                    "rename the column in the source",
                    keep,
                )
            if self.modality != "image" and name == self.caption_col:
                raise key_error(
                    ("keep_columns",),
                    f"{name!r} is the caption column (source.caption_col): raw captions are never written; "
                    "the clean caption is the txt member",
                    keep,
                )


def key_error(loc: tuple[str, ...], message: str, given: object) -> ValidationError:
    """A validation error at `loc` (below the model raising it), shown as `key 'a.b': message (got ...)`."""
    return ValidationError.from_exception_data(
        "config", [InitErrorDetails(type=PydanticCustomError("invalid", message), loc=loc, input=given)]
    )


def mismatched_views(modality: str, views: list[str]) -> list[str]:
    """The view kinds in `views` that a `modality` version cannot take (a pair version takes all)."""
    from augment.views import VIEWS  # the view modules load only when a config names views

    if modality == "pair":
        return []
    return [v for v in views if v in VIEWS and VIEWS.get(v).modality != modality]


def views_for(modality: str) -> list[str]:
    """The registered view kinds a `modality` version takes."""
    from augment.views import VIEWS

    return [v for v in VIEWS.names() if not mismatched_views(modality, [v])]


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
    """Image de-duplication: exact content hash, plus pHash within `max_hamming` bits.

    `enabled: false` keeps every image (the stage still runs and counts, rejecting none): for
    sources that list one image under several rows on purpose, e.g. an eval set with several
    captions per image."""

    enabled: bool = True
    max_hamming: int = Field(6, ge=-1, le=63)  # -1 disables near-duplicate detection


class RejectsConfig(Config):
    """What the build keeps of its rejected rows to look at (`rejects_sample.parquet`, catalog.scores)."""

    sample_per_reason: int = Field(
        DEFAULT_SAMPLE_PER_REASON, ge=0, description="rejected rows kept per reason, with caption and thumbnail"
    )


class ShardConfig(Config):
    samples_per_shard: int = Field(10_000, gt=0)
    seed: int = 0
    # Input rows whose kept samples are shuffled together (by a seeded hash): windows of
    # consecutive rows, in order. Wider mixes more; a tar task reads the raw shards of the
    # about shuffle_rows / samples_per_shard + 1 windows its samples come from.
    shuffle_rows: int = Field(20_000, gt=0)


class BuildConfig(Config):
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    root: str = "./data"
    source: SourceConfig
    download: DownloadConfig = DownloadConfig()
    # Every check (text and image) with its options; the image limits also go to img2dataset.
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = DedupConfig()
    shard: ShardConfig = ShardConfig()
    rejects: RejectsConfig = RejectsConfig()
    ray: RayConfig = RayConfig()
    keep_work: bool = False  # keep .work/v{N}/ (raw download shards, markers) after success
    # Present: after publishing the clean version v{N}, `pipelines.views.job.augment_version` publishes
    # its view version v{N+1} (parent NAME@N). Keys: augment/config.py.
    augment: Optional[AugmentConfig] = None

    @model_validator(mode="after")
    def _views_fit_modality(self) -> BuildConfig:
        wrong = mismatched_views(self.source.modality, self.augment.views) if self.augment else []
        if wrong:
            raise key_error(
                ("augment", "views"),
                f"view kinds {', '.join(wrong)} do not fit source.modality {self.source.modality!r} "
                f"({self.source.modality}-only versions take {', '.join(views_for(self.source.modality))})",
                self.augment.views,
            )
        return self
