"""Unit tests of the build stages that need no Ray: source validation, probe, checks, dedup, shards, accounting."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from catalog.manifest import FORMAT
from catalog.versions import version_numbers
from pipelines.filters import FilterConfig
from pipelines.stages.config import SourceConfig
from pipelines.stages.dedup import bands, representatives
from pipelines.stages.download import download_reason, img2dataset_limits
from pipelines.stages.funnel import ConservationError, StageCount, check_rows, funnel, summary_table
from pipelines.stages.image import ImageChecks
from pipelines.stages.outputs import write_version
from pipelines.stages.probe import TOO_MANY_PIXELS, TRUNCATED, HeaderProbeResizer, probe_error
from pipelines.stages.shard import shard_rank, window_fragments, windows_of, write_tar
from pipelines.stages.source import SourceError, read_source
from pipelines.stages.text import SCHEMA as TEXT_SCHEMA
from pipelines.stages.text import apply_whole_input
from pipelines.stages.workdir import open_workdir

# ------------------------------------------------------------------ source


def _parquet(path, **cols):
    pq.write_table(pa.table(cols), path)
    return str(path)


def test_source_reads_laion_style_parquet(tmp_path):
    uri = _parquet(tmp_path / "laion.parquet", URL=["http://a/1.jpg", "http://a/2.jpg"], TEXT=["a dog", None])
    src = read_source(SourceConfig(urls=uri, url_col="URL", caption_col="TEXT"))
    assert src.table.column_names == ["row", "url", "caption"]
    assert src.table.column("caption").to_pylist() == ["a dog", ""]
    assert src.files[0]["rows"] == 2 and len(src.sha256) == 64


def test_source_reads_cc3m_headerless_tsv(tmp_path):
    path = tmp_path / "cc3m.tsv"
    path.write_text('a "quoted" dog\thttp://a/1.jpg\nsecond\thttp://a/2.jpg\n', encoding="utf-8")
    src = read_source(SourceConfig(urls=str(path), format="tsv_headerless"))
    assert src.table.column("url").to_pylist() == ["http://a/1.jpg", "http://a/2.jpg"]
    assert src.table.column("caption").to_pylist() == ['a "quoted" dog', "second"]


def test_source_reads_csv_with_header(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text('caption,link\n"a dog, running",http://a/1.jpg\n', encoding="utf-8")
    src = read_source(SourceConfig(urls=str(path), url_col="link"))
    assert src.table.to_pylist() == [{"row": 0, "url": "http://a/1.jpg", "caption": "a dog, running"}]


def test_source_missing_column_names_file_and_column(tmp_path):
    uri = _parquet(tmp_path / "x.parquet", link=["http://a"], caption=["c"])
    with pytest.raises(SourceError, match=r"x\.parquet: column 'url' not found \(columns: link, caption\)"):
        read_source(SourceConfig(urls=uri))


def test_source_wrong_type_names_file_and_column(tmp_path):
    uri = _parquet(tmp_path / "x.parquet", url=["http://a"], caption=[3])
    with pytest.raises(SourceError, match=r"x\.parquet: column 'caption' has type int64, expected string"):
        read_source(SourceConfig(urls=uri))


def test_source_empty_file_missing_file_and_no_rows(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(SourceError, match=r"e\.csv: empty file"):
        read_source(SourceConfig(urls=str(tmp_path / "e.csv")))
    with pytest.raises(SourceError, match=r"nope\.parquet: file not found"):
        read_source(SourceConfig(urls=str(tmp_path / "nope.parquet")))
    (tmp_path / "h.csv").write_text("url,caption\n")
    with pytest.raises(SourceError, match=r"h\.csv: no rows"):
        read_source(SourceConfig(urls=str(tmp_path / "h.csv")))


def test_source_non_utf8_names_file_and_line(tmp_path):
    (tmp_path / "l.tsv").write_bytes(b"url\tcaption\nhttp://a\tcaf\xe9\n")
    with pytest.raises(SourceError, match=r"l\.tsv: not UTF-8 text \(line 2"):
        read_source(SourceConfig(urls=str(tmp_path / "l.tsv")))


def test_source_empty_url_names_row(tmp_path):
    uri = _parquet(tmp_path / "x.parquet", url=["http://a", " "], caption=["a", "b"])
    with pytest.raises(SourceError, match=r"x\.parquet: column 'url', row 1: empty URL"):
        read_source(SourceConfig(urls=uri))


# ------------------------------------------------------------------ header probe and image checks


def _jpeg(w, h, colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "JPEG")
    return buf.getvalue()


def _png_header_only(w, h) -> bytes:
    """A PNG whose IHDR declares w x h but holds a single tiny IDAT: a decompression bomb's header."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_probe_rejects_pixel_bomb_from_header_only():
    assert probe_error(_png_header_only(12_000, 10_000), 100_000_000) == TOO_MANY_PIXELS
    assert probe_error(_png_header_only(50_000, 50_000), 100_000_000) == TOO_MANY_PIXELS  # beyond PIL's own limit
    assert probe_error(_png_header_only(1000, 1000), 100_000_000) is None


def test_probe_flags_truncated_jpeg_and_passes_garbage_to_decoder():
    jpg = _jpeg(300, 300)
    assert probe_error(jpg, 1e8) is None
    assert probe_error(jpg[: len(jpg) // 2], 1e8) == TRUNCATED
    assert probe_error(b"<html>not an image</html>", 1e8) is None


def test_resizer_applies_exif_orientation():
    """A 400x300 picture stored as 300x400 pixels + Orientation 6 comes out upright: 400x300, left half red."""
    upright = Image.new("RGB", (400, 300), "blue")
    upright.paste((255, 0, 0), (0, 0, 200, 300))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    resizer = HeaderProbeResizer(
        image_size=150, resize_mode="keep_ratio", resize_only_if_bigger=True, encode_format="jpg", min_image_size=200
    )
    img, width, height, orig_w, orig_h, err = resizer(io.BytesIO(buf.getvalue()))
    assert err is None and (orig_w, orig_h) == (400, 300) and (width, height) == (200, 150)
    with Image.open(io.BytesIO(img)) as im:
        assert im.size == (200, 150)
        assert im.getpixel((20, 75))[0] > 200 and im.getpixel((180, 75))[2] > 200


def test_download_status_mapping():
    assert download_reason("success", None) is None
    assert download_reason("failed_to_download", "HTTP Error 404: Not Found") == "download_failed"
    assert download_reason("failed_to_resize", TOO_MANY_PIXELS) == "too_many_pixels"
    assert download_reason("failed_to_resize", "image too small") == "image_too_small"
    assert download_reason("failed_to_resize", "aspect ratio too large") == "aspect_ratio"
    assert download_reason("failed_to_resize", "Image decoding error") == "not_an_image"
    assert download_reason("failed_to_resize", TRUNCATED) == "not_an_image"


def test_image_checks_on_original_size():
    checks = ImageChecks(FilterConfig())
    small = _jpeg(256, 256)
    assert checks(small, 400, 300)[0] is None
    ph = checks(small, 400, 300)[1]
    assert len(ph) == 16
    # every decodable image keeps its pHash, whichever check rejects it (whatif replays thresholds)
    assert checks(small, 199, 400) == ("image_too_small", ph)
    assert checks(small, 1000, 300) == ("aspect_ratio", ph)
    assert checks(small, 20_000, 10_000) == ("too_many_pixels", ph)
    assert checks(b"garbage", 400, 300) == ("not_an_image", None)
    # check order: too_many_pixels before the decode, the decode before the size checks
    assert checks(b"garbage", 20_000, 10_000) == ("too_many_pixels", None)
    assert checks(b"garbage", 100, 900) == ("not_an_image", None)
    assert checks(small, 100, 900) == ("image_too_small", ph)


def test_image_checks_take_the_filters_options_and_skip_omitted_filters():
    small = _jpeg(256, 256)
    tight = ImageChecks(
        {"checks": {"aspect_ratio": {"max_ratio": 1.2}, "image_too_small": {"min_size": 500}, "too_many_pixels": False}}
    )
    assert [f.name for f in tight.before + tight.after] == ["image_too_small", "aspect_ratio"]
    assert tight(small, 400, 300)[0] == "image_too_small"
    assert tight(small, 800, 600)[0] == "aspect_ratio"
    assert tight(small, 20_000, 10_000)[0] == "aspect_ratio"  # too_many_pixels not selected
    none = ImageChecks({"checks": {"too_many_pixels": False, "image_too_small": False, "aspect_ratio": False}})
    assert none(small, 20_000, 10)[0] is None and none(b"garbage", 400, 300) == ("not_an_image", None)


def test_img2dataset_gets_only_the_pixel_limit():
    """Sizes and aspect ratios are the image stage's, so every fetched image has its scores recorded."""
    assert img2dataset_limits(FilterConfig()) == {
        "min_image_size": 0,
        "max_aspect_ratio": float("inf"),
        "max_image_area": 100_000_000,
    }
    only = FilterConfig(checks={"image_too_small": {"min_size": 64}, "too_many_pixels": False})
    assert img2dataset_limits(only) == {
        "min_image_size": 0,
        "max_aspect_ratio": float("inf"),
        "max_image_area": float("inf"),
    }


def _text_rows(hashes, reasons):
    n = len(hashes)
    given = {
        "row": list(range(n)),
        "key": [f"k{i}" for i in range(n)],
        "url": [f"u{i}" for i in range(n)],
        "caption": [f"c{h}" for h in hashes],
        "reason": reasons,
        "norm_hash": hashes,
    }
    return pa.table({c: given.get(c, [None] * n) for c in TEXT_SCHEMA.names}, schema=TEXT_SCHEMA)


def test_repeated_caption_limit_comes_from_the_config():
    hashes = ["a", "a", "a", "b", "b", "c"]
    rows = _text_rows(hashes, [None, None, "sensitive", None, None, None])
    default = apply_whole_input(rows, FilterConfig())
    assert default.column("reason").to_pylist() == [None, None, "sensitive", None, None, None]
    two = apply_whole_input(rows, FilterConfig(checks={"repeated_caption": {"limit": 2}}))
    # "a" occurs 3 times (a row rejected earlier still counts), "b" twice: only "a" is over the limit
    assert two.column("reason").to_pylist() == ["repeated_caption", "repeated_caption", "sensitive", None, None, None]
    # every row gets its count (scores.parquet replays the limit), and keeps its scrubbed caption
    assert two.column("repeat_count").to_pylist() == [3, 3, 3, 2, 2, 1]
    assert two.column("caption").to_pylist() == ["ca", "ca", "ca", "cb", "cb", "cc"]
    # counts over a larger input (a refresh): "b" crosses the limit only through rows not in this table
    wider = apply_whole_input(rows, FilterConfig(checks={"repeated_caption": {"limit": 2}}), Counter(a=1, b=3, c=1))
    assert wider.column("reason").to_pylist() == [None, None, "sensitive", "repeated_caption", "repeated_caption", None]
    # turned off in filter.checks: no repeat check at all
    off = apply_whole_input(rows, FilterConfig(checks={"repeated_caption": False}))
    assert off.column("reason").to_pylist() == [None, None, "sensitive", None, None, None]


# ------------------------------------------------------------------ dedup


def test_bands_cover_64_bits():
    for d in (0, 3, 6, 10):
        parts = bands(d)
        assert len(parts) == d + 1
        assert sum(mask.bit_length() for _, mask in parts) == 64


def test_dedup_keeps_smallest_key_of_exact_and_near_duplicates():
    keys = ["c", "a", "b", "d", "e"]
    sha = ["s1", "s1", "s2", "s3", "s4"]
    base = 0x0F0F_0F0F_0F0F_0F0F
    ph = [base, base, 0xFFFF_0000_FFFF_0000, base ^ 0b111111, base ^ 0b1111111]  # d: 6 bits off, e: 7 bits off
    reps = representatives(keys, [0, 1, 2, 3, 4], sha, ph, 6)
    assert reps == ["a", None, None, "a", None]  # c: same bytes as a; d: 6 bits from a
    # order of the input does not matter
    perm = [4, 2, 0, 3, 1]
    again = representatives([keys[i] for i in perm], perm, [sha[i] for i in perm], [ph[i] for i in perm], 6)
    assert again == [reps[i] for i in perm]
    assert representatives(keys, [0, 1, 2, 3, 4], sha, ph, -1) == ["a", None, None, None, None]


def test_dedup_against_prior_kept_images():
    """A refresh: carried images count as kept first, whatever their keys (exact by sha256, near by pHash)."""
    base = 0x0F0F_0F0F_0F0F_0F0F
    keys, sha, ph = ["a", "b", "c"], ["s1", "s2", "s3"], [base, base ^ 0b11, 0xFFFF_0000_FFFF_0000]
    assert representatives(keys, [0, 1, 2], sha, ph, 6) == [None, "a", None]
    old = (["z"], ["s3"], [base ^ 0b1])
    assert representatives(keys, [0, 1, 2], sha, ph, 6, prior=old) == ["z", "z", "z"]
    assert representatives(keys, [0, 1, 2], sha, ph, -1, prior=(["z"], ["s3"], [base])) == [None, None, "z"]


# ------------------------------------------------------------------ shards


def _window_order(keys: list[str], part_rows: int, seed: int, shuffle_rows: int) -> list[str]:
    """Shard order as the build makes it: each part's kept rows split by window, each window sorted."""
    windows: dict[int, list[pa.Table]] = {}
    for lo in range(0, len(keys), part_rows):
        rows = range(lo, min(lo + part_rows, len(keys)))
        kept = pa.table({"row": pa.array(rows, pa.int64()), "key": [keys[r] for r in rows]})
        span = windows_of(lo, len(rows), shuffle_rows)
        for w, fragment in zip(span, window_fragments(kept, seed, span, shuffle_rows), strict=True):
            windows.setdefault(w, []).append(fragment)
    order = []
    for w in sorted(windows):
        t = pa.concat_tables(windows[w]).sort_by([("rank", "ascending"), ("row", "ascending")])
        order += t.column("key").to_pylist()
    return order


def test_shard_order_shuffles_within_windows_of_rows_whatever_the_parts():
    keys = [f"{(i * 7919) % 1000:016x}" for i in range(250)]
    keys[40] = keys[10]  # a key listed twice: ties by row
    expected = [keys[i] for i in sorted(range(250), key=lambda i: (i // 60, shard_rank(keys[i], 0), i))]
    for part_rows in (250, 70, 37, 1):  # one part, parts across window edges, parts inside windows
        assert _window_order(keys, part_rows, 0, 60) == expected, part_rows
    assert sorted(expected) == sorted(keys) and expected != keys  # shuffled, nothing lost
    assert all(set(expected[w * 60 : (w + 1) * 60]) == set(keys[w * 60 : (w + 1) * 60]) for w in range(5))
    assert _window_order(keys, 70, 1, 60) != expected  # seeded
    assert _window_order(keys, 70, 0, 1000) == [
        keys[i] for i in sorted(range(250), key=lambda i: (shard_rank(keys[i], 0), i))
    ]


def test_write_tar_is_plain_tar_and_reproducible(tmp_path):
    sample = {
        "key": "00ff00ff00ff00ff",
        "jpg": _jpeg(8, 8),
        "caption": "a red square",
        "url": "http://x/1.jpg",
        "orig_width": 300,
        "orig_height": 300,
        "width": 256,
        "height": 256,
        "lang": "en",
        "lang_score": float("nan"),
        "english_ratio": 1.0,
        "phash": "0" * 16,
        "person_substituted": False,
    }
    info = write_tar(str(tmp_path / "a.tar"), [sample])
    again = write_tar(str(tmp_path / "b.tar"), [sample])
    assert info == again and info["samples"] == 1
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("00ff00ff00ff00ff.json").read())
    assert names == ["00ff00ff00ff00ff.jpg", "00ff00ff00ff00ff.txt", "00ff00ff00ff00ff.json"]
    assert meta["lang_score"] is None and meta["url"] == "http://x/1.jpg"
    import webdataset as wds

    (got,) = list(wds.WebDataset(str(tmp_path / "a.tar"), shardshuffle=False))
    assert got["__key__"] == "00ff00ff00ff00ff" and got["txt"] == b"a red square"


# ------------------------------------------------------------------ accounting, versions, manifest


def test_stage_count_and_funnel_conservation():
    a = StageCount.of("text", 4, [None, "not_english", None, "empty_caption"])
    b = StageCount.of("download", 2, [None, "download_failed"])
    f = funnel([a, b])
    assert f["in"] == 4 and f["kept"] == 1
    assert f["rejected"] == {"empty_caption": 1, "not_english": 1, "download_failed": 1}  # in check order
    assert "download" in summary_table(f)
    with pytest.raises(ConservationError, match="stage 'text': 5 rows in"):
        StageCount("text", 5, 2, a.rejected).check()
    with pytest.raises(ConservationError, match="stage 'text' kept 2 but stage 'download' got 3"):
        funnel([a, StageCount.of("download", 3, [None, None, None])])
    with pytest.raises(ValueError, match="unknown reject reason"):
        StageCount.of("text", 1, ["blurry"])


def test_check_rows_catches_lost_and_double_rows():
    check_rows(4, [0, 2], [1, 3])
    with pytest.raises(ConservationError, match=r"missing rows \[3\]"):
        check_rows(4, [0, 2], [1])
    with pytest.raises(ConservationError, match="1 counted twice"):
        check_rows(3, [0, 2], [1, 2])


def test_workdir_versions_resume_and_discard(tmp_path):
    root = str(tmp_path)
    wd = open_workdir(root, "demo", {"a": 1}, log=lambda _: None)
    assert wd.version == 1 and version_numbers(root, "demo") == []
    wd.mark("text-00000", {"rows": 3})
    assert open_workdir(root, "demo", {"a": 1}, log=lambda _: None).done("text-00000")
    assert not open_workdir(root, "demo", {"a": 2}, log=lambda _: None).done("text-00000")
    (tmp_path / "demo" / "v1").mkdir(exist_ok=True)
    (tmp_path / "demo" / "v1" / "manifest.json").write_text("{}")
    assert open_workdir(root, "demo", {"a": 2}, log=lambda _: None).version == 2


def test_manifest_fields(tmp_path):
    kept = pa.table(
        {
            "key": ["k1"],
            "url": ["u"],
            "caption": ["<person> holds a red circle"],
            "shard": ["v1/shards/shard-000000.tar"],
            "orig_width": [400],
            "orig_height": [300],
            "lang_score": [0.9],
            "person_substituted": [True],
        }
    )
    rejects = pa.table({"key": ["k2"], "url": ["u2"], "stage": ["text"], "reason": ["not_english"]})
    f = funnel([StageCount("source", 2, 2), StageCount.of("text", 2, [None, "not_english"])])
    shards = [{"path": "v1/shards/shard-000000.tar", "samples": 1, "bytes": 10, "sha256": "0" * 64}]
    out = tmp_path / "demo" / "v1"
    m = write_version(
        str(out),
        dataset="demo",
        version=1,
        config={"x": 1},
        sources=[{"uri": "s", "rows": 2, "sha256": "h"}],
        funnel=f,
        kept=kept,
        rejects=rejects,
        shards=shards,
    )
    assert json.loads((out / "manifest.json").read_text()) == m
    assert m["format"] == FORMAT and m["samples"] == 1 and m["parents"] == [] and m["preview"] == ["k1"]
    assert m["schema"] == {"keys": ["jpg", "json", "txt"], "views": {"image": [], "text": []}}
    assert set(m["stats"]) == {"caption_words", "image_short_side", "aspect_ratio", "lid_score", "person_share"}
    assert m["stats"]["person_share"] == 1.0 and sum(m["stats"]["aspect_ratio"]["counts"]) == 1
    assert pq.read_table(out / "rejects.parquet").column_names == ["key", "url", "stage", "reason"]
    assert json.loads((out / "stats.json").read_text()) == f
    with pytest.raises(ValueError, match="must be"):
        write_version(
            str(tmp_path / "v1"),
            dataset="demo",
            version=1,
            config={},
            sources=[],
            funnel=f,
            kept=kept,
            rejects=rejects,
            shards=shards,
        )
    assert np.isclose(sum(m["stats"]["lid_score"]["counts"]), 1)
