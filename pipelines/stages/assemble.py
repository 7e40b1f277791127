"""The end of a build, one Ray task per part: every row's outcome, scores and, if kept, its sample.

A part is a range of input rows (`pipelines.stages.source.split_source`). Its task reads
the part's decided text rows, the image parts of the raw download shards holding its rows
(`pipelines.stages.image.PART`) and the duplicates the dedup stage found among them, and
writes the part's rejects, its rows of `scores.parquet`, its kept samples split into
its shuffle windows (`pipelines.stages.shard`), and its rejects-sample candidates (up to
`per_reason` per reason by `catalog.scores.sample_order`: the first ones of a reason over
the whole build are among the first ones of some part). It checks that every row of its
range ends kept or rejected exactly once, and returns only counts: the funnel is the sum of
the parts' stage counts, and nothing about a row passes through the driver.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog.parquet import read_parquet, write_parquet
from catalog.scores import sample_order
from pipelines.stages.dedup import pass_dedup
from pipelines.stages.download import META
from pipelines.stages.funnel import StageCount, check_rows
from pipelines.stages.image import PART as IMAGE_PART
from pipelines.stages.scores import score_table
from pipelines.stages.shard import window_fragments
from pipelines.stages.source import kept_fields


def passed(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_null(table.column("reason")))


def rejected(table: pa.Table, stage: str) -> pa.Table:
    t = table.filter(pc.is_valid(table.column("reason")))
    return pa.table(
        {"row": t.column("row"), "stage": pa.array([stage] * t.num_rows, pa.string()), "reason": t.column("reason")}
    )


def assemble_part(job: dict[str, Any]) -> dict[str, Any]:
    """The task of one part. `job`: text (decided text part), images (image part files), duplicates
    (the dedup stage's (row, duplicate_of) file, or None: dedup off), first_row, rows, modality,
    per_reason, seed, shuffle_rows, windows (the [start, stop) of the shuffle windows its rows overlap)
    and the output paths rejects, scores, candidates, kept (one per window)."""
    text = read_parquet(job["text"])
    carried = text.select(["row", *kept_fields(text)])
    text = text.drop_columns(kept_fields(text)).sort_by("row")
    n = text.num_rows
    if job["modality"] == "text":
        kept = text_samples(passed(text), carried)
        counts = [StageCount.of("text", n, text.column("reason").to_pylist())]
        rejects = _rejects(text, [(text, "text")])
        scores = score_table(text, rejects)
    else:
        both = pa.concat_tables([read_parquet(u) for u in job["images"]]) if job["images"] else IMAGE_PART.empty_table()
        both = both.sort_by("row")
        dl = both.select([*META, "raw"]).append_column("reason", both.column("download_reason"))
        img = both.filter(pc.is_null(both.column("download_reason"))).select(["row", "reason", "decoded", "phash"])
        candidates = _join(
            passed(img).select(["row", "phash"]), text.select(["row", "key"]), dl.select(["row", "sha256"])
        )
        dd = pass_dedup(candidates)
        if job["duplicates"] is not None:
            dups = read_parquet(job["duplicates"], columns=["row", "duplicate_of"])
            dups = dups.filter(pc.is_in(dups.column("row"), value_set=candidates.column("row")))
            found = candidates.join(dups, keys="row", join_type="left outer").sort_by("row")
            reason = pc.if_else(
                pc.is_valid(found.column("duplicate_of")), "duplicate_image", pa.scalar(None, pa.string())
            )
            dd = found.append_column("reason", reason).select([*candidates.column_names, "reason", "duplicate_of"])
        kept = kept_samples(passed(dd), text, dl, img, carried)
        n_text = len(passed(text))
        counts = [
            StageCount.of("text", n, text.column("reason").to_pylist()),
            StageCount.of("download", n_text, dl.column("reason").to_pylist()),
            StageCount.of("image", len(passed(dl)), img.column("reason").to_pylist()),
            StageCount.of("dedup", dd.num_rows, dd.column("reason").to_pylist()),
        ]
        if dl.num_rows != n_text:
            raise RuntimeError(f"download: {n_text} rows sent to img2dataset, {dl.num_rows} rows came back")
        rejects = _rejects(text, [(text, "text"), (dl, "download"), (img, "image"), (dd, "dedup")])
        scores = score_table(text, rejects, dl, img, dd)
    expected = range(job["first_row"], job["first_row"] + job["rows"])
    if n != job["rows"] or text.column("row").to_pylist() != list(expected):
        raise RuntimeError(f"part {job['text']}: holds {n} rows, expected rows {expected.start}..{expected.stop - 1}")
    check_rows(n, _local(kept, expected.start), _local(rejects, expected.start))
    write_parquet(job["rejects"], rejects)
    write_parquet(job["scores"], scores)
    write_parquet(job["candidates"], sample_candidates(rejects, job["per_reason"]))
    windows = range(*job["windows"])
    for uri, fragment in zip(
        job["kept"], window_fragments(kept, job["seed"], windows, job["shuffle_rows"]), strict=True
    ):
        write_parquet(uri, fragment)
    return {"counts": [c.to_dict() for c in counts], "kept": kept.num_rows}


def _local(table: pa.Table, start: int) -> list[int]:
    return [r - start for r in table.column("row").to_pylist()]


def sample_candidates(rejects: pa.Table, per_reason: int) -> pa.Table:
    """(row, key, reason, order) of the first `per_reason` rejected rows per reason by `sample_order`."""
    by_reason: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for row, key, reason in zip(*(rejects.column(c).to_pylist() for c in ("row", "key", "reason"))):
        by_reason[reason].append((sample_order(key), row, key))
    out: dict[str, list] = {"row": [], "key": [], "reason": [], "order": []}
    for reason, items in sorted(by_reason.items()):
        for order, row, key in sorted(items)[:per_reason]:
            out["row"].append(row)
            out["key"].append(key)
            out["reason"].append(reason)
            out["order"].append(order)
    return pa.table(
        {
            "row": pa.array(out["row"], pa.int64()),
            "key": pa.array(out["key"], pa.string()),
            "reason": pa.array(out["reason"], pa.string()),
            "order": pa.array(out["order"], pa.string()),
        }
    )


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
