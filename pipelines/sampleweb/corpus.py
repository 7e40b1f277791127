"""Assemble the sample web corpus: plan the rows, draw and encode each one, compute its truth.

Design: URLs embed the base URL given to `generate` (default http://127.0.0.1:8765, the
default of `python -m pipelines serve-web`), so `urls.parquet` is a plain URL list any
downloader takes as is. The truth depends on the URLs (of a duplicate group, the member
with the smallest `sample_key(url)` is kept), so a test that serves the corpus on another
port picks a free port first (`pipelines.webserver.free_port()`) and passes its base URL
here. Image file names do not depend on the base URL: image files are byte-identical for
a seed whatever the base URL.

Truth (`truth.parquet`): a row's fate is `keep` or the first reason, in
`catalog.reasons` order, among all faults it carries: the faults its categories were
drawn with, `repeated_caption` when its normalised caption occurs more than
`REPEAT_LIMIT` times in the whole input (the default limit of the pipeline's
`repeated_caption` filter), and `duplicate_image` for every member but one of a duplicate group.

Unimodal lists (for image-only and text-only dataset versions), drawn after the paired rows
with the same generator, so the paired rows, their images and truth do not depend on them:
`images.parquet` (a `url` column; served files `images/i000000.jpg`, ... pHash-distinct from
every paired image; content, server and duplicate faults) and `texts.parquet` (a `caption`
column; the caption faults and a repeated-caption group). Their truth, row-aligned, is in
`images_truth.parquet` and `texts_truth.parquet`, by the same rules restricted to the
faults of their modality.

Scenes (`scene` column of urls/truth, images/images_truth and eval/eval_truth): every row
whose served file is a decodable drawn picture records its scene as compact JSON
(`shapes.scene_json`: background, relation, region, left_to_right, and per shape kind,
colour, size class and bounding box as fractions of the upright picture's width and
height). It is null where no drawn picture is served: error statuses, HTML pages, the
oversized PNG, truncated JPEGs. The boxes are true for the image as the pipeline decodes
it: an EXIF-rotated file stores the upright picture rotated (the box is of the upright
one, which the pipeline restores), a grayscale, CMYK, palette or other-format file keeps
the geometry, and a near-duplicate is the original re-encoded or uniformly resized (the
fractions do not change). No mess category crops or pads a picture, so no box needs
transforming and none is dropped for it.

Eval list (`eval.parquet`: url, caption, scene; `eval_truth.parquet`), drawn last with the
same generator, so every other output is byte-identical whatever its size: clean paired
rows only (no mess fault: the default filters keep every one), captions by the same
caption generator, each image pHash-distinct from every paired and image-only image,
served as `eval/e000000.jpg`, ...
"""

from __future__ import annotations

import io
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from catalog import storage
from catalog.config import validate
from catalog.keys import sample_key
from catalog.reasons import KEEP, first_reason
from pipelines.filters.repeated_caption import RepeatedCaption
from pipelines.phash import phash64
from pipelines.sampleweb import captions as cap
from pipelines.sampleweb import mess
from pipelines.sampleweb.shapes import COLOURS, GRAY_COLOURS, Scene, render, sample_scene, scene_json

FORMAT = "lipforge.sampleweb/1"
DISTINCT_BITS = 12  # an ordinary image differs from every earlier one by more than this (pHash bits)
NEAR_BITS = 4  # a near-duplicate copy is within this many bits of its original
CAPTION_CAP = 5  # an ordinary caption (and its <person> form) appears at most this often
REPEAT_LIMIT = RepeatedCaption.Options().limit  # more equal normalised captions than this: repeated_caption
PHASH_SIDE = 256  # pHash is taken on the image resized to this shorter side, like the pipeline
MAX_DRAWS = 60

_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_STATUS = {"status_404": 404, "status_500": 500}
_ROUTE = {None: "", "slow": "slow/", "redirect": "redirect/", "wrong_content_type": "ctype/"}  # + the served folder


@dataclass(frozen=True)
class Plan:
    """The faults one row is drawn with."""

    category: str
    caption: str | None = None  # a key of mess.CAPTION_FAULTS
    content: tuple[str, ...] = ()  # keys of mess.CONTENT_FAULTS
    server: str | None = None  # a key of mess.SERVER_FAULTS
    group: int | None = None  # repeated-caption group or duplicate group id


@dataclass
class Row:
    url: str
    caption: str | None
    category: str
    faults: set[str]
    clean: str = ""  # the caption the pipeline keeps, if the row is kept
    width: int = 0  # upright size of the served image; 0 when nothing decodable is served
    height: int = 0
    image_format: str = ""  # PIL format name of the served bytes ("" for none/corrupt/HTML)
    image_mode: str = ""
    dup_group: int | None = None
    translate_to: str | None = None  # "spanish"/"catalan": caption filled in by apertium
    fate: str = KEEP
    scene: str | None = None  # shapes.scene_json of the served picture; None when none is served


@dataclass
class _Group:
    """The first-drawn member of a duplicate group, which the others copy."""

    scene: Scene
    image: Image.Image
    data: bytes
    quality: int
    phash: int


# The mess categories a unimodal list draws from: an image-only list has no captions to
# judge, a text-only list no images or URLs.
UNIMODAL_SLOTS = {"image": ("content", "server", "duplicate"), "text": ("caption", "repeated")}


def plan_rows(n: int, rates: mess.Rates, rng: random.Random, modality: str = "pair", what: str = "n") -> list[Plan]:
    """One Plan per row, shuffled; raises if the rates need more rows than n.

    `modality` "image" / "text" plans an image-only / text-only list: only the categories of
    its slots (`UNIMODAL_SLOTS`); its `combined` rows mix content and server faults (image)
    or are left out (text). `what` names n in the error.
    """
    slots = UNIMODAL_SLOTS.get(modality, ("caption", "content", "server", "repeated", "duplicate"))
    counts = rates.rows(n)
    plans: list[Plan] = []
    if "caption" in slots:
        for name in mess.CAPTION_FAULTS:
            plans += [Plan(name, caption=name)] * counts[name]
    if "content" in slots:
        for name in mess.CONTENT_FAULTS:
            plans += [Plan(name, content=(name,))] * counts[name]
    if "server" in slots:
        for name in mess.SERVER_FAULTS:
            plans += [Plan(name, server=name)] * counts[name]
    if "repeated" in slots:
        for g in range(counts["repeated_caption"] // mess.REPEATS):
            plans += [Plan("repeated_caption", group=g)] * mess.REPEATS
    group = 0
    for name in ("exact_duplicate", "near_duplicate") if "duplicate" in slots else ():
        left = counts[name]
        while left:
            size = left if left in (2, 3) else 2 if left == 4 else rng.choice((2, 3))
            plans += [Plan(name, group=group)] * size
            group, left = group + 1, left - size
    for _ in range(counts["combined"] if modality != "text" else 0):
        if modality == "image":
            slots_of_row: tuple[str, ...] = ("content", "server")
        else:
            slots_of_row = rng.choice(
                (("caption", "content"), ("caption", "server"), ("content", "server"), ("caption", "content", "server"))
            )
        caption = rng.choice(mess.COMBINED_CAPTION) if "caption" in slots_of_row else None
        content = tuple(rng.choice(mess.COMBINED_CONTENT).split("+")) if "content" in slots_of_row else ()
        server = rng.choice(mess.COMBINED_SERVER) if "server" in slots_of_row else None
        category = "+".join([*([caption] if caption else []), *content, *([server] if server else [])])
        plans.append(Plan(category, caption=caption, content=content, server=server))
    if len(plans) > n:
        raise ValueError(
            f"{what}={n} is too small for the mess rates: they need {len(plans)} rows "
            "(raise n or lower rates with --rate NAME=0)"
        )
    plans += [Plan("clean")] * (n - len(plans))
    rng.shuffle(plans)
    return plans


def resize_short(image: Image.Image, side: int = PHASH_SIDE) -> Image.Image:
    w, h = image.size
    scale = side / min(w, h)
    return image.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0
    )


def image_phash(image: Image.Image) -> int:
    """pHash as the pipeline sees the image: upright, RGB, shorter side 256."""
    return phash64(resize_short(image.convert("RGB")))


class _Builder:
    """Draws rows one by one, keeping images pHash-distinct and captions rarely repeated."""

    def __init__(self, n: int, seed: int, base_url: str, image_dir: Path) -> None:
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.base_url = base_url.rstrip("/")
        self.image_dir = image_dir
        self.hashes = np.zeros(max(n, 1), dtype=np.uint64)
        self.n_hashes = 0
        self.caption_counts: Counter[str] = Counter()
        self.groups: dict[int, _Group] = {}
        self.spam: list[str] = []  # one caption per repeated-caption group, set once rows are planned
        self.huge: bytes | None = None
        self.prefix = ""  # of served file names: "" for the paired rows, IMAGE_PREFIX for the image-only list
        self.folder = "images"  # the served folder (and URL path) of the files: "images", or EVAL_FOLDER

    # ---------------------------------------------------------------- drawing

    def canvas(self, content: tuple[str, ...]) -> tuple[int, int]:
        rng = self.rng
        small, wide = "small_image" in content, "wide_image" in content
        if not small and not wide:
            return rng.randint(256, 640), rng.randint(256, 640)
        if small and wide:
            short = rng.randint(100, 180)
            long = round(short * rng.uniform(3.3, 4.0))
        elif wide:
            short = rng.randint(200, 300)
            long = round(short * rng.uniform(3.3, 4.6))
        else:
            short = rng.randint(96, 190)
            long = round(short * rng.uniform(1.0, 1.6))
        return (long, short) if rng.random() < 0.5 else (short, long)

    def distinct(self, h: int) -> bool:
        if not self.n_hashes:
            return True
        diff = np.bitwise_count(self.hashes[: self.n_hashes] ^ np.uint64(h))
        return int(diff.min()) > DISTINCT_BITS

    def register(self, h: int) -> None:
        if self.n_hashes == len(self.hashes):
            self.hashes = np.concatenate([self.hashes, np.zeros_like(self.hashes)])
        self.hashes[self.n_hashes] = np.uint64(h)
        self.n_hashes += 1

    def fresh_caption(self, scene: Scene) -> str | None:
        """An English caption of `scene` that has not reached CAPTION_CAP yet (None if none found)."""
        for _ in range(20):
            text = cap.english_caption(scene, self.rng)
            if self.caption_counts[cap.repetition_key(text)] < CAPTION_CAP:
                return text
        return None

    def draw(
        self, size: tuple[int, int], n_shapes: int, colours: tuple[str, ...], pixels: bool
    ) -> tuple[Scene, str, Image.Image | None]:
        """A scene, a fresh English caption of it, and (if `pixels`) its picture, pHash-distinct."""
        for _ in range(MAX_DRAWS):
            scene = sample_scene(self.rng, size[0], size[1], n_shapes, colours)
            text = self.fresh_caption(scene)
            if text is None:
                continue
            if not pixels:
                return scene, text, None
            image = render(scene, self.np_rng)
            h = image_phash(image)
            if self.distinct(h):
                self.register(h)
                return scene, text, image
        raise RuntimeError(f"no distinct {size[0]}x{size[1]} image with a fresh caption after {MAX_DRAWS} draws")

    def count(self, *texts: str) -> None:
        for text in dict.fromkeys(cap.repetition_key(t) for t in texts):
            self.caption_counts[text] += 1

    # ---------------------------------------------------------------- rows

    def row(self, index: int, plan: Plan) -> Row:
        if plan.category in ("exact_duplicate", "near_duplicate"):
            return self.duplicate_row(index, plan)
        content = plan.content
        n_shapes = self.n_shapes(plan)
        colours = GRAY_COLOURS if "grayscale" in content else tuple(COLOURS)
        reachable = plan.server not in _STATUS
        pixels = reachable and not {"huge_image", "html_as_image"} & set(content)
        scene, english, image = self.draw(self.canvas(content), n_shapes, colours, pixels)
        row = self.caption_row(plan, scene, english)
        row.faults |= {r for r in (*map(mess.CONTENT_FAULTS.get, content), mess.SERVER_FAULTS.get(plan.server)) if r}
        if not reachable:  # the server answers an error status: no file, no image facts
            row.url = self.url(plan.server, f"{self.prefix}{index:06d}.jpg")
            return row
        name, data = self.content_bytes(index, content, image, row)
        row.url = self.url(plan.server, name)
        (self.image_dir / name).write_bytes(data)
        if image is not None and "corrupt_jpeg" not in content:
            row.scene = scene_json(scene)
        return row

    def n_shapes(self, plan: Plan) -> int:
        rng = self.rng
        if plan.caption == "person_name":
            return 1
        if plan.caption in cap.FOREIGN_GRAMMARS:
            return rng.choice((1, 2))
        return rng.choices((1, 2, 3), weights=(0.35, 0.45, 0.2))[0]

    def text_row(self, plan: Plan) -> Row:
        """A row of the text-only list: a caption (with its caption fault) of a scene never drawn."""
        n_shapes = self.n_shapes(plan)
        scene, english, _ = self.draw(self.canvas(()), n_shapes, tuple(COLOURS), pixels=False)
        return self.caption_row(plan, scene, english)

    def caption_row(self, plan: Plan, scene: Scene, english: str) -> Row:
        rng, kind = self.rng, plan.caption
        row = Row(url="", caption=english, category=plan.category, faults=set())
        if kind is not None and mess.CAPTION_FAULTS[kind]:
            row.faults.add(mess.CAPTION_FAULTS[kind])
        clean = english
        if plan.category == "repeated_caption":
            assert plan.group is not None
            row.caption = clean = self.spam[plan.group]
        elif kind in cap.APERTIUM_PAIRS:
            row.translate_to = kind
        elif kind in cap.FOREIGN_GRAMMARS:
            row.caption = cap.FOREIGN_GRAMMARS[kind](scene, rng)
        elif kind == "filename_caption":
            row.caption = cap.filename_caption(rng)
        elif kind == "url_caption":
            row.caption = cap.url_caption(rng)
        elif kind == "number_caption":
            row.caption = cap.number_caption(rng)
        elif kind == "empty_caption":
            row.caption = rng.choice(cap.EMPTY_CAPTIONS)
        elif kind == "single_pos":
            row.caption = cap.single_pos_caption(rng)
        elif kind == "person_name":
            for _ in range(20):
                row.caption, clean = cap.person_caption(scene.shapes[0], scene.background, rng)
                if self.caption_counts[cap.repetition_key(clean)] < CAPTION_CAP:
                    break
        elif kind == "messy_text":
            row.caption = cap.messy_caption(english, rng)
            clean = row.caption
        row.clean = cap.normalise(clean)
        if plan.category != "repeated_caption":
            self.count(english, row.clean)
        return row

    def content_bytes(
        self, index: int, content: tuple[str, ...], image: Image.Image | None, row: Row
    ) -> tuple[str, bytes]:
        """The served file's name and bytes; fills the row's image facts."""
        rng, stem = self.rng, f"{self.prefix}{index:06d}"
        if "huge_image" in content:
            if self.huge is None:
                self.huge = mess.huge_png(*mess.HUGE_SIZE)
            row.width, row.height = mess.HUGE_SIZE
            row.image_format, row.image_mode = "PNG", "1"
            return f"{stem}.png", self.huge
        if "html_as_image" in content:
            return f"{stem}.jpg", mess.html_page(rng)
        assert image is not None
        if "corrupt_jpeg" in content:
            return f"{stem}.jpg", mess.corrupt_jpeg(mess.to_bytes(image, "JPEG", quality=90), rng)
        fmt = next((c for c in content if mess.CONTENT_FAULTS[c] is None), "jpeg")
        data, ext, stored = mess.encode(image, fmt, rng)
        row.width, row.height = image.size
        row.image_format, row.image_mode = _PIL_FORMAT[ext], stored.mode
        return f"{stem}.{ext}", data

    def url(self, server: str | None, name: str) -> str:
        if server in _STATUS:
            return f"{self.base_url}/status/{_STATUS[server]}/{name}"
        return f"{self.base_url}/{_ROUTE[server]}{self.folder}/{name}"

    def duplicate_row(self, index: int, plan: Plan) -> Row:
        assert plan.group is not None
        group = self.groups.get(plan.group)
        name = f"{self.prefix}{index:06d}.jpg"
        if group is None:
            n_shapes = self.rng.choices((1, 2, 3), weights=(0.35, 0.45, 0.2))[0]
            scene, english, image = self.draw(self.canvas(()), n_shapes, tuple(COLOURS), True)
            assert image is not None
            quality = self.rng.randint(82, 95)
            data = mess.to_bytes(image, "JPEG", quality=quality)
            self.groups[plan.group] = group = _Group(scene, image, data, quality, image_phash(_decode(data)))
            stored = image
        else:
            english = self.fresh_caption(group.scene) or cap.english_caption(group.scene, self.rng)
            if plan.category == "exact_duplicate":
                data, stored = group.data, group.image
            else:
                data, stored = self.near_copy(group, index)
        self.count(english)
        (self.image_dir / name).write_bytes(data)
        clean = cap.normalise(english)
        return Row(
            url=self.url(None, name),
            caption=english,
            category=plan.category,
            faults=set(),
            clean=clean,
            width=stored.width,
            height=stored.height,
            image_format="JPEG",
            image_mode="RGB",
            dup_group=plan.group,
            scene=scene_json(group.scene),  # a copy is the original re-encoded or uniformly resized
        )

    def near_copy(self, group: _Group, index: int) -> tuple[bytes, Image.Image]:
        for _ in range(10):
            data, stored = mess.near_duplicate(group.image, group.quality, self.rng)
            bits = (image_phash(_decode(data)) ^ group.phash).bit_count()
            if bits <= NEAR_BITS:
                return data, stored
        raise RuntimeError(f"row {index}: no near-duplicate within {NEAR_BITS} pHash bits of its original")


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def _finish(rows: list[Row]) -> None:
    """Fill in translations, repeated captions, duplicate representatives and fates."""
    for lang, pair in cap.APERTIUM_PAIRS.items():
        todo = [r for r in rows if r.translate_to == lang]
        for r, text in zip(todo, cap.translate([r.caption or "" for r in todo], pair)):
            r.caption = text
    counts = Counter(cap.repetition_key(r.caption) for r in rows)
    for r in rows:
        if counts[cap.repetition_key(r.caption)] > REPEAT_LIMIT:
            r.faults.add("repeated_caption")
    groups: dict[int, list[Row]] = {}
    for r in rows:
        if r.dup_group is not None:
            groups.setdefault(r.dup_group, []).append(r)
    for members in groups.values():
        passing = sorted((r for r in members if not r.faults), key=lambda r: sample_key(r.url))
        for r in passing[1:]:
            r.faults.add("duplicate_image")
    for i, r in enumerate(rows):
        r.fate = first_reason(r.faults) or KEEP
        if r.fate == "repeated_caption" and r.category != "repeated_caption":
            raise RuntimeError(f"row {i} ({r.category}): caption {r.caption!r} repeats by chance")
        if r.category == "repeated_caption" and "repeated_caption" not in r.faults:
            raise RuntimeError(
                f"row {i}: repeated caption {r.caption!r} occurs only {counts[cap.repetition_key(r.caption)]} times"
            )
        if r.fate != KEEP:
            r.clean = ""
    kept = Counter(r.clean.lower() for r in rows if r.fate == KEEP)
    over = [c for c, k in kept.items() if k > REPEAT_LIMIT]
    if over:
        raise RuntimeError(f"kept clean caption {over[0]!r} occurs {kept[over[0]]} times")


IMAGE_PREFIX = "i"  # file names of the image-only list's images: i000000.jpg, ...


def image_only_rows(builder: _Builder, n: int, rates: mess.Rates) -> list[Row]:
    """The image-only list, drawn after the paired rows (whose bytes it leaves alone): content,
    server and duplicate faults only, its own file names and duplicate groups, every image
    pHash-distinct from the paired ones. The captions drawn with the scenes are not published."""
    if not n:
        return []
    plans = plan_rows(n, rates, builder.rng, "image", "n_images")
    builder.prefix, builder.groups = IMAGE_PREFIX, {}
    rows = [builder.row(i, plan) for i, plan in enumerate(plans)]
    _finish(rows)
    return rows


def text_only_rows(builder: _Builder, n: int, rates: mess.Rates) -> list[Row]:
    """The text-only list, drawn after the image-only one: captions of scenes never rendered,
    with the caption faults and a repeated-caption group of its own (spam unlike the paired rows')."""
    if not n:
        return []
    plans = plan_rows(n, rates, builder.rng, "text", "n_texts")
    groups = len({p.group for p in plans if p.category == "repeated_caption"})
    builder.spam = cap.spam_captions(len(builder.spam) + groups)[len(builder.spam) :]
    rows = [builder.text_row(plan) for plan in plans]
    _finish(rows)
    return rows


EVAL_PREFIX = "e"  # file names of the eval list's images: e000000.jpg, ...
EVAL_FOLDER = "eval"  # served folder of the eval list's images (DIR/eval/, URL path /eval/)


def eval_rows(builder: _Builder, n: int, out: Path) -> list[Row]:
    """The held-out eval list, drawn after every other list (whose bytes it leaves alone): clean
    paired rows only, so the default filters keep every one; images pHash-distinct from every
    paired and image-only image (the builder's hashes hold them all), in their own folder."""
    if not n:
        return []
    builder.prefix, builder.folder, builder.groups = EVAL_PREFIX, EVAL_FOLDER, {}
    builder.image_dir = out / EVAL_FOLDER
    rows = [builder.row(i, Plan("clean")) for i in range(n)]
    _finish(rows)
    bad = next((i for i, r in enumerate(rows) if r.fate != KEEP or r.scene is None), None)
    if bad is not None:
        raise RuntimeError(f"eval row {bad}: fate {rows[bad].fate!r}, expected a kept row with a scene")
    return rows


def _pair_tables(rows: list[Row]) -> tuple[pa.Table, pa.Table]:
    """A paired list (url, caption, scene) and its row-aligned truth."""
    urls = pa.table(
        {
            "url": pa.array([r.url for r in rows], pa.string()),
            "caption": pa.array([r.caption for r in rows], pa.string()),
            "scene": pa.array([r.scene for r in rows], pa.string()),
        }
    )
    truth = pa.table(
        {
            "url": pa.array([r.url for r in rows], pa.string()),
            "fate": pa.array([r.fate for r in rows], pa.string()),
            "clean_caption": pa.array([r.clean for r in rows], pa.string()),
            "scene": pa.array([r.scene for r in rows], pa.string()),
            "category": pa.array([r.category for r in rows], pa.string()),
            "dup_group": pa.array([r.dup_group for r in rows], pa.int32()),
            "width": pa.array([r.width for r in rows], pa.int32()),
            "height": pa.array([r.height for r in rows], pa.int32()),
            "image_format": pa.array([r.image_format for r in rows], pa.string()),
            "image_mode": pa.array([r.image_mode for r in rows], pa.string()),
        }
    )
    return urls, truth


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _write_unimodal(out: Path, image_rows: list[Row], text_rows: list[Row]) -> None:
    """images.parquet (url, scene) + images_truth.parquet, texts.parquet (caption) + texts_truth.parquet (row-aligned)."""
    images = pa.table(
        {
            "url": pa.array([r.url for r in image_rows], pa.string()),
            "scene": pa.array([r.scene for r in image_rows], pa.string()),
        }
    )
    image_truth = pa.table(
        {
            "url": pa.array([r.url for r in image_rows], pa.string()),
            "fate": pa.array([r.fate for r in image_rows], pa.string()),
            "scene": pa.array([r.scene for r in image_rows], pa.string()),
            "category": pa.array([r.category for r in image_rows], pa.string()),
            "dup_group": pa.array([r.dup_group for r in image_rows], pa.int32()),
            "width": pa.array([r.width for r in image_rows], pa.int32()),
            "height": pa.array([r.height for r in image_rows], pa.int32()),
            "image_format": pa.array([r.image_format for r in image_rows], pa.string()),
            "image_mode": pa.array([r.image_mode for r in image_rows], pa.string()),
        }
    )
    texts = pa.table({"caption": pa.array([r.caption for r in text_rows], pa.string())})
    text_truth = pa.table(
        {
            "fate": pa.array([r.fate for r in text_rows], pa.string()),
            "clean_caption": pa.array([r.clean for r in text_rows], pa.string()),
            "category": pa.array([r.category for r in text_rows], pa.string()),
        }
    )
    for name, table in (
        ("images", images),
        ("images_truth", image_truth),
        ("texts", texts),
        ("texts_truth", text_truth),
    ):
        storage.write_bytes(str(out / f"{name}.parquet"), _parquet(table))


def _list_summary(rows: list[Row]) -> dict[str, Any]:
    return {
        "n": len(rows),
        "rows_per_category": dict(sorted(Counter(r.category for r in rows).items())),
        "fates": dict(sorted(Counter(r.fate for r in rows).items())),
    }


def _prepare(out_dir: Path) -> None:
    """Create out_dir, or clear the previous corpus in it; refuse to clobber anything else."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"{out_dir}: exists and is not a directory")
        entries = set(os.listdir(out_dir))
        if entries and "corpus.json" not in entries:
            raise ValueError(
                f"{out_dir}: not empty and not a sample-web corpus (no corpus.json); refusing to overwrite"
            )
        for folder in ("images", EVAL_FOLDER):
            if (out_dir / folder).exists():
                shutil.rmtree(out_dir / folder)
    (out_dir / "images").mkdir(parents=True)
    (out_dir / EVAL_FOLDER).mkdir()


def generate(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    base_url: str = "http://127.0.0.1:8765",
    rates: mess.Rates | dict[str, float] | None = None,
    n_images: int = 0,
    n_texts: int = 0,
    n_eval: int = 0,
) -> dict[str, Any]:
    """Write a sample web corpus of `n` rows into `out_dir`; return its summary (= corpus.json).

    `rates` maps mess categories (`mess.category_names()`) to the share of rows; missing
    ones keep their defaults. `n_images` / `n_texts`: rows of the image-only list
    (images.parquet) and the text-only list (texts.parquet), drawn after the paired rows,
    so the paired rows and their images are the same whatever these are (0: empty lists).
    `n_eval`: rows of the held-out eval list (eval.parquet), drawn after both, so it
    changes no other output (0: an empty list). Same arguments: byte-identical outputs.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for name, value in (("n_images", n_images), ("n_texts", n_texts), ("n_eval", n_eval)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    if not isinstance(rates, mess.Rates):
        rates = validate(mess.Rates, dict(rates or {}), source="rates")
    out = Path(out_dir)
    builder = _Builder(n, seed, base_url, out / "images")
    plans = plan_rows(n, rates, builder.rng)
    builder.spam = cap.spam_captions(len({p.group for p in plans if p.category == "repeated_caption"}))
    _prepare(out)
    rows = [builder.row(i, plan) for i, plan in enumerate(plans)]
    _finish(rows)
    image_rows = image_only_rows(builder, n_images, rates)
    text_rows = text_only_rows(builder, n_texts, rates)
    held_out = eval_rows(builder, n_eval, out)

    for listed, list_name, truth_name in ((rows, "urls", "truth"), (held_out, "eval", "eval_truth")):
        urls, truth = _pair_tables(listed)
        storage.write_bytes(str(out / f"{list_name}.parquet"), _parquet(urls))
        storage.write_bytes(str(out / f"{truth_name}.parquet"), _parquet(truth))
    _write_unimodal(out, image_rows, text_rows)
    summary = {
        "format": FORMAT,
        "n": n,
        "seed": seed,
        "base_url": builder.base_url,
        "rates": rates.to_dict(),
        "rows_per_category": dict(sorted(Counter(r.category for r in rows).items())),
        "fates": dict(sorted(Counter(r.fate for r in rows).items())),
        "repeat_limit": REPEAT_LIMIT,
        "distinct_phash_bits": DISTINCT_BITS,
        "near_duplicate_phash_bits": NEAR_BITS,
        "huge_image_size": list(mess.HUGE_SIZE),
        "images": _list_summary(image_rows),
        "texts": _list_summary(text_rows),
        "eval": _list_summary(held_out),
    }
    storage.write_json(str(out / "corpus.json"), summary)
    return summary
