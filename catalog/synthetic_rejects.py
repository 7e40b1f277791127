"""Made-up rejected rows for `catalog.synthetic.make_version(..., rejects_sample=True)`.

For each reason of the synthetic funnel it invents that many rejected input rows whose
scores say why the check rejected them (`catalog.scores.SCORES_OF`), keeps up to
`per_reason` of them per reason (`catalog.scores.sample_order`, as the build picks them)
and returns the rejects sample (`SAMPLE_SCHEMA`): captions scrubbed to `<person>`, real
JPEG thumbnails where an image would have been downloaded, none for rows rejected at the
text stage or before the download, and for a duplicate its kept representative's key and
thumbnail. The raw captions (with the person's name) go only into the source table the
caller writes, as a build's source list holds them.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from PIL import Image, ImageDraw

from catalog.keys import sample_key
from catalog.reasons import REASONS, STAGE_OF
from catalog.scores import SAMPLE_SCHEMA, SCORES_OF, THUMBNAIL_SIDE, sample_order

PERSON = "<person>"
_PASS_TEXT: dict[str, Any] = {
    "caption_empty": False,
    "meaningless": False,
    "lang": "en",
    "lang_prob": 0.9612,
    "lang_en_prob": 0.9612,
    "lid_english_ratio": 1.0,
    "english_ratio": 1.0,
    "pos": [],
    "sensitive": False,
    "repeat_count": 1,
}
# reason -> (raw caption, {score: value}); {name} is the planted person name, {i} the row
_TEXT: dict[str, tuple[str | None, dict[str, Any]]] = {
    "empty_caption": (None, {"caption_empty": True}),
    "meaningless_caption": ("IMG_{i:04d}.JPG", {"meaningless": True}),
    "not_english": (
        "{name} mit einem Hund im Park",
        {"lang": "de", "lang_prob": 0.91234, "lang_en_prob": 0.02151, "lid_english_ratio": 0.2},
    ),
    "low_english_ratio": ("{name} avec le chien près de la house", {"english_ratio": 0.42857}),
    "single_pos": ("dog cat house", {"pos": ["NOUN"], "pos_words": 3}),
    "sensitive": ("{name} in a gory knife fight", {"sensitive": True}),
    "repeated_caption": ("click here to buy now", {"repeat_count": 14}),
}
# reason -> (download status, download error, (orig width, orig height), decodes)
_IMAGE: dict[str, tuple[str, str | None, tuple[int, int] | None, bool | None]] = {
    "download_failed": ("failed_to_download", "HTTP Error 404: Not Found", None, None),
    "too_many_pixels": ("failed_to_resize", "image area too large", (12000, 9000), None),
    "not_an_image": ("success", None, None, False),
    "image_too_small": ("success", None, (150, 120), True),
    "aspect_ratio": ("success", None, (640, 160), True),
    "duplicate_image": ("success", None, (512, 384), True),
}


def thumbnail_of(jpg: bytes) -> bytes:
    """A JPEG whose longer side is at most THUMBNAIL_SIDE px (as the build's thumbnails)."""
    with Image.open(io.BytesIO(jpg)) as im:
        im = im.convert("RGB")
        im.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        return buf.getvalue()


def _picture(size: tuple[int, int], rng: random.Random) -> bytes:
    w, h = min(size[0], 640), min(size[1], 480)
    color = tuple(rng.randint(30, 225) for _ in range(3))
    image = Image.new("RGB", (w, h), color)
    ImageDraw.Draw(image).rectangle((w // 5, h // 5, 4 * w // 5, 4 * h // 5), fill=tuple(255 - c for c in color))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def rejected_rows(
    rejected: dict[str, int],
    *,
    first_row: int,
    url_offset: int,
    words: Sequence[str],
    person_name: str,
    representative: tuple[str, bytes] | None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every made-up rejected input row (SAMPLE_SCHEMA columns plus `raw_caption`), in check order."""
    rng = random.Random(seed * 7919 + 17)
    rows: list[dict[str, Any]] = []
    for reason in REASONS:
        for _ in range(rejected.get(reason, 0)):
            i = len(rows)
            url = f"http://127.0.0.1/rejected/{url_offset + i}.jpg"
            row: dict[str, Any] = dict.fromkeys(SAMPLE_SCHEMA.names)
            row.update(row=first_row + i, key=sample_key(url), url=url, stage=STAGE_OF[reason], reason=reason)
            _text_scores(row, reason, i, person_name, words, rng)
            if reason in _IMAGE:
                _image_scores(row, reason, rng, representative)
            rows.append(row)
    return rows


def _text_scores(row: dict[str, Any], reason: str, i: int, name: str, words: Sequence[str], rng: random.Random) -> None:
    """The text checks' scores: passing for the checks before `reason`'s, its own failing, later ones null."""
    if reason in _TEXT:
        template, scores = _TEXT[reason]
        earlier = list(_TEXT)[: list(_TEXT).index(reason)]
        row.update({c: _PASS_TEXT[c] for r in earlier for c in SCORES_OF[r] if c in _PASS_TEXT})
        row.update(scores)
    else:  # passed every text check
        template = ("{name} with " if i % 2 == 0 else "") + " ".join(rng.choices(words, k=rng.randint(4, 9)))
        row.update(_PASS_TEXT)
    raw = None if template is None else template.format(name=name, i=i)
    row["raw_caption"] = raw
    row["caption"] = None if raw is None else raw.replace(name, PERSON)
    if raw is not None:
        row["n_words"] = len(raw.split())
        row["name_gate"] = row["person_substituted"] = name in raw
        if row["pos"] is not None:
            row["pos_words"] = row["pos_words"] or len(raw.split())


def _image_scores(
    row: dict[str, Any], reason: str, rng: random.Random, representative: tuple[str, bytes] | None
) -> None:
    status, error, size, decoded = _IMAGE[reason]
    row.update(download_status=status, download_error=error, decoded=decoded)
    if size:
        row["orig_width"], row["orig_height"] = size
    if status != "success":
        return
    data = _picture(size or (200, 200), rng) if decoded else b"<html>not an image</html>"
    row["sha256"] = hashlib.sha256(data).hexdigest()
    if not decoded:
        return
    row["phash"] = f"{rng.getrandbits(64):016x}"
    row["thumbnail"] = thumbnail_of(data)
    if reason == "duplicate_image" and representative is not None:
        key, jpg = representative
        row["duplicate_of"] = key
        row["thumbnail"] = thumbnail_of(jpg)  # a duplicate looks like what it duplicates
        row["duplicate_thumbnail"] = thumbnail_of(jpg)


def sample_table(rows: list[dict[str, Any]], per_reason: int) -> pa.Table:
    """Up to `per_reason` rows per reason (smallest `sample_order` first), in row order, as SAMPLE_SCHEMA."""
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
    picked = [
        r for group in by_reason.values() for r in sorted(group, key=lambda r: sample_order(r["key"]))[:per_reason]
    ]
    picked.sort(key=lambda r: r["row"])
    return pa.Table.from_pylist([{c: r[c] for c in SAMPLE_SCHEMA.names} for r in picked], schema=SAMPLE_SCHEMA)
