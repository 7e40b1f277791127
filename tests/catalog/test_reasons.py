"""The reject-reason vocabulary and its check order."""

import pytest

from catalog.reasons import FATES, KEEP, REASONS, STAGE_OF, STAGES, check_reason, first_reason, rank, reasons_of


def test_vocabulary_is_the_documented_one():
    assert set(REASONS) == {
        "download_failed",
        "not_an_image",
        "image_too_small",
        "aspect_ratio",
        "too_many_pixels",
        "empty_caption",
        "meaningless_caption",
        "not_english",
        "low_english_ratio",
        "single_pos",
        "sensitive",
        "repeated_caption",
        "duplicate_image",
    }
    assert FATES[0] == KEEP and len(set(REASONS)) == len(REASONS)


def test_text_checks_come_before_downloads_and_dedup_is_last():
    assert REASONS.index("repeated_caption") < REASONS.index("download_failed")
    assert REASONS.index("too_many_pixels") < REASONS.index("not_an_image")
    assert REASONS[-1] == "duplicate_image"


def test_first_reason_follows_check_order():
    assert first_reason({"duplicate_image", "not_english", "image_too_small"}) == "not_english"
    assert first_reason(["aspect_ratio", "image_too_small"]) == "image_too_small"
    assert first_reason([]) is None


def test_unknown_reason_is_refused_with_the_allowed_list():
    with pytest.raises(ValueError, match="unknown reject reason 'blurry'; allowed: empty_caption"):
        check_reason("blurry")
    with pytest.raises(ValueError, match="'blurry'"):
        first_reason(["blurry", "not_english"])


def test_each_reason_has_one_stage_and_stages_follow_check_order():
    assert set(STAGE_OF) == set(REASONS) and set(STAGE_OF.values()) == set(STAGES)
    assert reasons_of("text") == REASONS[:7] and reasons_of("download") == ("download_failed",)
    assert reasons_of("image") == ("too_many_pixels", "not_an_image", "image_too_small", "aspect_ratio")
    assert reasons_of("dedup") == ("duplicate_image",)
    assert sum((reasons_of(s) for s in STAGES), ()) == REASONS  # a stage's reasons are one run of the order
    assert rank("empty_caption") == 0 and rank("duplicate_image") == len(REASONS) - 1
    with pytest.raises(ValueError, match="unknown stage 'shard'"):
        reasons_of("shard")
