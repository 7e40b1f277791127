"""Replaying decisions on recorded scores (pipelines.stages.replay / whatif / explain) on hand-built rows, no Ray."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from PIL import Image

from catalog.cli import run
from catalog.errors import UserError
from catalog.scores import SCHEMA
from pipelines.__main__ import COMMANDS
from pipelines.stages.config import BuildConfig
from pipelines.stages.explain import Explanation, explain_caption, render
from pipelines.stages.replay import UNKNOWN, Replay
from pipelines.stages.whatif import changed_keys, check_replayable

BASE = {"dataset": "d", "source": {"urls": "x.parquet"}}


def cfg(**sections) -> BuildConfig:
    return BuildConfig.model_validate({**BASE, **sections})


def row(i: int, **scores) -> dict:
    """A kept pair row's scores, with `scores` changed."""
    base = {
        "row": i,
        "key": f"k{i:02d}",
        "caption_empty": False,
        "meaningless": False,
        "lang": "en",
        "lang_prob": 0.9,
        "lang_en_prob": 0.9,
        "lid_english_ratio": 1.0,
        "n_words": 5,
        "english_ratio": 1.0,
        "pos": [],
        "pos_words": 5,
        "sensitive": False,
        "name_gate": False,
        "person_substituted": False,
        "repeat_count": 1,
        "download_status": "success",
        "download_error": None,
        "orig_width": 400,
        "orig_height": 300,
        "decoded": True,
        "phash": f"{i * 0x0101_0101_0101_0101 & 0xFFFF_FFFF_FFFF_FFFF:016x}",
        "sha256": f"s{i}",
    }
    return {**base, **scores}


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in SCHEMA.names} for r in rows], schema=SCHEMA)


def test_fate_is_the_first_failing_check_in_order():
    r = Replay(cfg())
    assert r.fate(row(0))[:2] == (None, None)
    both = row(1, english_ratio=0.2, pos=["NOUN"], sensitive=True)
    assert r.fate(both)[:2] == ("low_english_ratio", "text")
    assert r.fate(row(2, repeat_count=11))[:2] == ("repeated_caption", "text")
    assert r.fate(row(3, orig_width=150))[:2] == ("image_too_small", "image")
    assert r.fate(row(4, decoded=False, orig_width=150))[:2] == ("not_an_image", "image")
    failed = row(5, download_status="failed_to_download", download_error="HTTP Error 404")
    assert r.fate(failed)[:2] == ("download_failed", "download")
    # the options change the verdict, not the scores
    loose = Replay(cfg(filter={"checks": {"low_english_ratio": {"min_ratio": 0.1}}}))
    assert loose.fate(both)[:2] == ("single_pos", "text")
    off = Replay(cfg(filter={"checks": {"low_english_ratio": False, "single_pos": False}}))
    assert off.fate(both)[:2] == ("sensitive", "text")


def test_a_row_never_downloaded_is_unknown_once_its_text_passes():
    built = cfg()
    foreign = row(0, english_ratio=0.2, download_status=None, orig_width=None, orig_height=None, decoded=None)
    assert Replay(built).fate(foreign)[:2] == ("low_english_ratio", "text")
    reason, stage, checks = Replay(cfg(filter={"checks": {"low_english_ratio": False}}), built).fate(foreign)
    assert (reason, stage) == (UNKNOWN, "download")
    assert next(c for c in checks if c.name == "download").missing == ("download_status",)


def test_pixel_limit_is_applied_at_download_and_unknown_when_raised():
    built = cfg(filter={"checks": {"too_many_pixels": {"max_pixels": 1_000_000}}})
    big = row(0, orig_width=2000, orig_height=2000)
    lower = Replay(cfg(filter={"checks": {"too_many_pixels": {"max_pixels": 100_000}}}), built)
    assert lower.fate(row(1))[:2] == ("too_many_pixels", "download")  # 400x300 > 100,000: img2dataset refuses it
    refused = row(
        2,
        download_status="failed_to_resize",
        download_error="too many pixels",
        orig_width=None,
        orig_height=None,
        decoded=None,
    )
    assert Replay(built).fate(refused)[:2] == ("too_many_pixels", "download")
    assert lower.fate(refused)[:2] == ("too_many_pixels", "download")
    higher = Replay(cfg(filter={"checks": {"too_many_pixels": {"max_pixels": 10**9}}}), built)
    assert higher.fate(refused)[0] == UNKNOWN and higher.fate(big)[:2] == (None, None)


def test_dedup_is_replayed_over_the_rows_every_other_check_keeps():
    same = row(1, sha256="s0")  # exact copy of k00
    near = row(2, phash=f"{int(row(0)['phash'], 16) ^ 0b1111:016x}")  # 4 bits from k00
    small = row(3, sha256="s0", orig_width=100)  # a copy of k00, but rejected as too small first
    t = table([row(0), same, near, small])
    assert Replay(cfg()).fates(t) == [
        (None, None),
        ("duplicate_image", "dedup"),
        ("duplicate_image", "dedup"),
        ("image_too_small", "image"),
    ]
    assert Replay(cfg(dedup={"max_hamming": 2})).fates(t)[2] == (None, None)
    assert Replay(cfg(dedup={"enabled": False})).fates(t)[1] == (None, None)
    # the smallest key survives: without k00, k01 (same bytes) represents the group
    assert Replay(cfg()).fates(table([same, small, near]))[0] == (None, None)


def test_text_source_has_no_download_checks_and_image_source_no_text_checks():
    text = Replay(cfg(source={"urls": "x.txt", "modality": "text"}))
    only_text = row(0, download_status=None, orig_width=None, orig_height=None, decoded=None)
    assert text.fate(only_text)[:2] == (None, None) and all(c.stage == "text" for c in text.checks(only_text))
    image = Replay(cfg(source={"urls": "x.parquet", "modality": "image"}))
    assert image.fate(row(1, english_ratio=None, lang=None, caption_empty=None))[:2] == (None, None)


def test_changed_keys_and_what_whatif_can_replay():
    old = cfg().to_dict()
    new = cfg(filter={"checks": {"not_english": {"confident_en": 0.7}, "single_pos": False}}, dedup={"max_hamming": 3})
    assert changed_keys(old, new.to_dict()) == [
        "dedup.max_hamming",
        "filter.checks.not_english.confident_en",
        "filter.checks.single_pos",
    ]
    check_replayable(changed_keys(old, new.to_dict()), cfg())
    check_replayable(["shard.seed", "ray.num_cpus", "rejects.sample_per_reason"], cfg())
    for key in ("filter.checks.sensitive.words", "filter.max_caption_chars", "download.image_size", "source.urls"):
        with pytest.raises(UserError, match="cannot be replayed"):
            check_replayable([key], cfg())
    # a check that was off in the build has no scores to replay
    with pytest.raises(UserError, match="filter.checks.single_pos cannot"):
        check_replayable(["filter.checks.single_pos"], cfg(filter={"checks": {"single_pos": False}}))


def test_explain_marks_the_deciding_check():
    r = row(0, english_ratio=0.5, pos=["NOUN"])
    reason, stage, checks = Replay(cfg()).fate(r)
    text = render(Explanation("explain: a row", checks, reason, stage, ["key k00"], ("low_english_ratio", "text")))
    lines = text.splitlines()
    deciding = [line for line in lines if "<- decides" in line]
    assert len(deciding) == 1 and "low_english_ratio" in deciding[0] and "min_ratio=0.8" in deciding[0]
    assert any("single_pos" in line and "(after the deciding check)" in line for line in lines)
    assert "decision: rejected: low_english_ratio (stage text)" in text
    assert "the build decided: rejected: low_english_ratio (stage text)" in text


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 40, 40)).save(buf, "JPEG")
    return buf.getvalue()


def test_explain_caption_and_image_measured_now(chain, tmp_path):
    config = cfg(source={"urls": str(tmp_path / "missing.parquet")})
    e = explain_caption(config, "a red circle above a blue square", _jpeg(400, 300), chain=chain)
    assert e.reason is None and [c.name for c in e.checks][-4:] == [
        "too_many_pixels",
        "not_an_image",
        "image_too_small",
        "aspect_ratio",
    ]
    assert any("repeat count 1 (this caption alone)" in n for n in e.notes)  # no source list to count over
    small = explain_caption(config, "a red circle above a blue square", _jpeg(120, 90), chain=chain)
    assert (small.reason, small.stage) == ("image_too_small", "image")
    foreign = explain_caption(config, "ein kleiner roter Kreis über einem blauen Quadrat", None, chain=chain)
    assert (foreign.reason, foreign.stage) == ("not_english", "text")
    text_only = explain_caption(config, "a red circle", None, chain=chain)
    assert text_only.reason == UNKNOWN and text_only.stage == "download"  # no --image: the image checks wait


def test_explain_and_whatif_user_errors_are_one_line(tmp_path, capsys):
    argv = [
        ["explain", "--row", "3"],
        ["explain", "--version", "d@1", "--row", "1", "--root", str(tmp_path)],
        ["whatif", "d@1", "--root", str(tmp_path)],
        ["whatif", "d@1", "--root", str(tmp_path), "--set", "dedup.max_hamming=2"],
    ]
    for args in argv:
        assert run("python -m pipelines", "", COMMANDS, args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
