"""A version's rejects sample read back (catalog.rejects) and `python -m catalog rejects`, on
synthetic versions whose rejects_sample.parquet matches their made-up funnel."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from catalog import rejects, storage
from catalog.__main__ import run
from catalog.keys import sample_key
from catalog.parquet import read_parquet, write_parquet
from catalog.publish import describe_shard
from catalog.reasons import REASONS
from catalog.scores import SAMPLE_SCHEMA, SCORES_OF, THUMBNAIL_SIDE
from catalog.shards import write_shard
from catalog.store import Catalog
from catalog.synthetic import funnel_for, make_sample, make_version
from pipelines.stages.assemble import sample_candidates
from pipelines.stages.outputs import write_version
from pipelines.stages.scores import pick_sample, sample_part, score_table

NAME = "Ottoline Vandersteen-Abara"
CAP = 3
REJECTED = {
    "empty_caption": 1,
    "not_english": 5,
    "single_pos": 1,
    "download_failed": 2,
    "not_an_image": 1,
    "image_too_small": 1,
    "duplicate_image": 2,
}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture()
def root(tmp_path):
    """web@1 with a rejects sample (CAP per reason), web@2 built before reject samples."""
    r = str(tmp_path / "root")
    make_version(
        r,
        "web",
        6,
        seed=1,
        views=False,
        rejected=REJECTED,
        rejects_sample=True,
        sample_per_reason=CAP,
        person_name=NAME,
    )
    make_version(r, "web", 2, seed=2, views=False)
    return r


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def manifest(root: str, ref: str = "web@1") -> dict:
    return Catalog(root).manifest(ref)


def test_synthetic_sample_matches_schema_and_funnel(root):
    t = pq.read_table(os.path.join(root, "web", "v1", "rejects_sample.parquet"))
    assert t.schema == SAMPLE_SCHEMA
    rows = t.to_pylist()
    counts = {r: sum(1 for x in rows if x["reason"] == r) for r in REJECTED}
    assert counts == {r: min(n, CAP) for r, n in REJECTED.items()}
    assert manifest(root)["funnel"]["rejected"] == REJECTED
    assert manifest(root)["config"]["rejects"] == {"sample_per_reason": CAP}
    kept = set(Catalog(root).keys("web", 1))
    for r in rows:
        if r["stage"] == "text" or r["reason"] in ("download_failed", "not_an_image"):
            assert r["thumbnail"] is None, r["reason"]
        else:
            with Image.open(io.BytesIO(r["thumbnail"])) as im:
                assert im.format == "JPEG" and 0 < max(im.size) <= THUMBNAIL_SIDE
        if r["reason"] == "duplicate_image":
            assert r["duplicate_of"] in kept
            with Image.open(io.BytesIO(r["duplicate_thumbnail"])) as im:
                assert im.format == "JPEG"
        else:
            assert r["duplicate_of"] is None and r["duplicate_thumbnail"] is None
    captions = " ".join(r["caption"] or "" for r in rows)
    assert "<person>" in captions and NAME not in captions
    source = pq.read_table(manifest(root)["sources"][0]["uri"]).to_pylist()
    assert len(source) == 6 + sum(REJECTED.values()) and any(NAME in (s["caption"] or "") for s in source)


def test_summary_counts_the_funnel_and_the_sample_in_check_order(root):
    m = manifest(root)
    counts = rejects.sampled_counts(root, "web", 1)
    entries = rejects.summary(m, counts)
    assert [e["reason"] for e in entries] == [r for r in REASONS if r in REJECTED]
    by = {e["reason"]: e for e in entries}
    assert by["not_english"] == {
        "reason": "not_english",
        "stage": "text",
        "rejected": 5,
        "share": pytest.approx(5 / m["funnel"]["in"]),
        "sampled": CAP,
    }
    assert by["duplicate_image"]["stage"] == "dedup" and by["duplicate_image"]["sampled"] == 2
    assert rejects.sampled_counts(root, "web", 2) is None
    assert rejects.sample_cap(m) == CAP and rejects.sample_cap(manifest(root, "web@2")) == 200


def test_reason_rows_are_the_sampled_rows_of_one_reason(root):
    m = manifest(root)
    rows = rejects.reason_rows(root, m, "not_english")
    assert len(rows) == CAP and {r["reason"] for r in rows} == {"not_english"}
    assert [r["row"] for r in rows] == sorted(r["row"] for r in rows)
    assert all(r["lang"] == "de" and r["caption"].startswith("<person>") for r in rows)
    assert rejects.reason_rows(root, m, "not_english", limit=1, start=1) == rows[1:2]
    assert rejects.reason_rows(root, m, "not_english", limit=5, start=9) == []
    dup = rejects.reason_rows(root, m, "duplicate_image")[0]
    jpg = rejects.thumbnail(root, "web", 1, "duplicate_image", dup["key"], "duplicate_thumbnail")
    assert jpg == dup["duplicate_thumbnail"] and jpg[:2] == b"\xff\xd8"
    text_row = rejects.reason_rows(root, m, "empty_caption")[0]
    with pytest.raises(LookupError, match="no thumbnail"):
        rejects.thumbnail(root, "web", 1, "empty_caption", text_row["key"])


def test_missing_file_unknown_and_unused_reasons_are_user_errors(root):
    with pytest.raises(rejects.NoRejectsSample) as exc:
        rejects.read_sample(root, "web", 2)
    uri = os.path.join(root, "web", "v2", "rejects_sample.parquet")
    assert str(exc.value) == (
        f"web@2: no rejects_sample.parquet at {uri}: the version was built before rejects samples were recorded; "
        "rebuild it"
    )
    with pytest.raises(rejects.ReasonNotFound) as exc:
        rejects.reason_rows(root, manifest(root), "blurry")
    assert "unknown reason 'blurry'" in str(exc.value) and "not_english (5), single_pos (1)" in str(exc.value)
    with pytest.raises(rejects.ReasonNotFound, match=r"no row was rejected as 'aspect_ratio'.*duplicate_image \(2\)"):
        rejects.reason_rows(root, manifest(root), "aspect_ratio")


def test_scores_are_formatted_for_people():
    assert rejects.format_value(0.91234) == "0.912" and rejects.format_value(1.0) == "1.000"
    assert rejects.format_value(None) == "-" and rejects.format_value(True) == "yes"
    assert rejects.format_value(["NOUN", "VERB"]) == "NOUN, VERB" and rejects.format_value([]) == "(none)"
    assert rejects.format_value(14) == "14"
    row = {"lang": "de", "lang_prob": 0.91234, "lang_en_prob": None, "n_words": 7, "sensitive": False, "key": "k"}
    primary, others = rejects.score_items(row, "not_english")
    assert [n for n, _ in primary] == list(SCORES_OF["not_english"])
    assert dict(primary) == {
        "lang": "de",
        "lang_prob": "0.912",
        "lang_en_prob": "-",
        "lid_english_ratio": "-",
        "n_words": "7",
    }
    assert others == [("sensitive", "no")]


def test_why_a_row_has_no_thumbnail():
    assert rejects.why_no_thumbnail({"stage": "text"}) == "not downloaded: rejected at the text stage"
    assert (
        rejects.why_no_thumbnail(
            {"stage": "download", "download_status": "failed_to_download", "download_error": "HTTP Error 404"}
        )
        == "not downloaded: failed_to_download (HTTP Error 404)"
    )
    assert rejects.why_no_thumbnail({"stage": "image", "download_status": "success", "decoded": False}).startswith(
        "no thumbnail: the downloaded bytes do not decode"
    )


def test_cli_summary_table(root, capsys):
    code, out, err = cli(capsys, "--root", root, "rejects", "web@1")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"web@1: 13 of {6 + 13} input rows rejected"
    assert (
        lines[1]
        == f"sample: up to {CAP} rows per reason, in {os.path.join(root, 'web', 'v1', 'rejects_sample.parquet')}"
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("reason"))
    assert lines[header].split() == ["reason", "stage", "rejected", "share", "sampled", "see", "them"]
    body = [line.split() for line in lines[header + 2 :]]
    assert [b[0] for b in body] == [r for r in REASONS if r in REJECTED]
    assert body[1][:5] == ["not_english", "text", "5", "26.3%", "3"]
    assert " ".join(body[1][5:]) == f"python -m catalog --root {root} rejects web@1 --reason not_english"


def test_cli_one_reason_shows_keys_captions_and_its_scores(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "not_english", "--limit", "2")
    assert code == 0
    assert out.startswith("web@1 not_english: 5 rejected, 3 in the sample, showing 2\n")
    keys = [r["key"] for r in rejects.reason_rows(root, manifest(root), "not_english")]
    assert re.findall(r"^([0-9a-f]{16})  http://\S+$", out, re.M) == keys[:2]
    assert re.findall(r"^  caption +(.*)$", out, re.M) == ["<person> mit einem Hund im Park"] * 2
    assert re.findall(r"^  lang_prob +(\S+)$", out, re.M) == ["0.912"] * 2
    assert re.findall(r"^  lid_english_ratio +(\S+)$", out, re.M) == ["0.200"] * 2
    assert "english_ratio  " not in out.replace("lid_english_ratio", "")  # only the reason's own scores
    assert "(showing 2 of 3 sampled rows: --limit 3 for all)" in out
    assert NAME not in out


def test_cli_duplicates_name_their_representative_and_nulls_read_dash(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "duplicate_image")
    kept = set(Catalog(root).keys("web", 1))
    reps = re.findall(r"^  duplicate_of +([0-9a-f]{16})  \(kept representative\)$", out, re.M)
    assert code == 0 and len(reps) == 2 and set(reps) <= kept
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "not_an_image")
    assert re.findall(r"^  (decoded|download_error) +(.*)$", out, re.M) == [("decoded", "no"), ("download_error", "-")]
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "single_pos")
    assert re.findall(r"^  pos +(.*)$", out, re.M) == ["NOUN"]


def test_cli_json(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["sample_per_reason"] == CAP and doc["version"] == "web@1"
    assert [(e["reason"], e["rejected"], e["sampled"]) for e in doc["reasons"]][:2] == [
        ("empty_caption", 1, 1),
        ("not_english", 5, 3),
    ]
    code, out, _ = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "image_too_small", "--json")
    doc = json.loads(out)
    (row,) = doc["rows"]
    assert row["reason"] == "image_too_small" and row["thumbnail_bytes"] > 0 and "thumbnail" not in row
    assert (row["orig_width"], row["orig_height"]) == (150, 120)


def test_cli_mistakes_are_one_line_errors(root, capsys):
    code, out, err = cli(capsys, "--root", root, "rejects", "web@2")
    assert code == 2 and out == "" and "built before rejects samples were recorded; rebuild it" in err
    code, _, err = cli(capsys, "--root", root, "rejects", "web@1", "--reason", "blurry")
    assert code == 2 and err.startswith("error: web@1: unknown reason 'blurry'; this version's reasons: empty_caption")
    code, _, err = cli(capsys, "--root", root, "rejects", "web@2", "--reason", "not_english")
    assert code == 2 and "web@2: no rejects_sample.parquet" in err
    code, _, err = cli(capsys, "--root", root, "rejects", "web@7")
    assert code == 2 and "no complete version 7" in err


def test_cli_subprocess_prints_no_traceback(root):
    storage.write_bytes(os.path.join(root, "web", "v1", "rejects_sample.parquet"), b"not a parquet file")
    env = {**os.environ, "PYTHONPATH": REPO}
    for argv, expected in (
        (["rejects", "web@1"], "not a readable rejects sample"),
        (["rejects", "web@2", "--reason", "not_english"], "rebuild it"),
        (["rejects", "web@1", "--reason", "nope"], "unknown reason 'nope'"),
    ):
        p = subprocess.run(
            [sys.executable, "-m", "catalog", "--root", root, *argv], capture_output=True, text=True, env=env, cwd=REPO
        )
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: ") and expected in p.stderr, p.stderr


def test_reads_the_sample_the_build_writer_writes(tmp_path, capsys):
    """The build's own sample writer (pipelines.stages.scores / outputs) and this reader agree."""
    root = str(tmp_path / "root")
    rng = random.Random(3)
    urls = [f"http://h/{i}.jpg" for i in range(5)]
    keys = [sample_key(u) for u in urls]
    members = [make_sample(u, f"<person> with a red house {i}", rng, views=False) for i, u in enumerate(urls)]
    # rows 0, 1 kept; 2 rejected at the text stage; 3 a duplicate of row 0; 4 a failed download
    write_shard(
        os.path.join(root, "b", "v1", "shards", "shard-000000.tar"), [(keys[i], members[i].items()) for i in (0, 1)]
    )
    shard = describe_shard(os.path.join(root, "b"), "v1/shards/shard-000000.tar")
    raw = str(tmp_path / "raw.parquet")
    write_parquet(raw, pa.table({"row": [0, 1, 3], "jpg": [members[0]["jpg"], members[1]["jpg"], members[0]["jpg"]]}))
    text = pa.table(
        {
            "row": list(range(5)),
            "key": keys,
            "url": urls,
            "caption": [f"<person> with a red house {i}" for i in range(5)],
            "lang": ["en", "en", "de", "en", "en"],
            "lang_prob": [0.99, 0.98, 0.87654, 0.97, 0.96],
        }
    )
    reasons = pa.table(
        {
            "row": [2, 3, 4],
            "stage": ["text", "dedup", "download"],
            "reason": ["not_english", "duplicate_image", "download_failed"],
        }
    )
    dl = pa.table(
        {
            "row": [0, 1, 3, 4],
            "status": ["success", "success", "success", "failed_to_download"],
            "error_message": [None, None, None, "HTTP Error 500"],
            "original_width": [400, 400, 400, None],
            "original_height": [300, 300, 300, None],
            "sha256": ["a" * 64, "b" * 64, "a" * 64, None],
            "raw": [raw, raw, raw, None],
        }
    )
    img = pa.table({"row": [0, 1, 3], "decoded": [True, True, True], "phash": ["0" * 16, "1" * 16, "0" * 16]})
    dd = pa.table({"row": [3], "duplicate_of": [keys[0]]})
    scores = score_table(text, reasons, dl, img, dd)
    names = ("scores", "text", "images", "index", "dups", "cands", "out")
    files = {name: str(tmp_path / f"{name}.parquet") for name in names}
    write_parquet(files["scores"], scores)
    write_parquet(files["text"], text)
    write_parquet(files["images"], dl.select(["row", "status", "raw"]))
    write_parquet(files["index"], pa.table({"uri": [files["images"]], "first_row": [0], "last_row": [4]}))
    write_parquet(files["dups"], pa.table({"row": [3], "duplicate_of": [keys[0]], "rep_row": [0]}))
    rejected = scores.filter(pc.is_valid(scores.column("reason"))).select(["row", "key", "reason"])
    write_parquet(files["cands"], sample_candidates(rejected, per_reason=5))
    picked = pick_sample([files["cands"]], per_reason=5)
    job = {"rows": picked.column("row").to_pylist(), "images": files["index"], "duplicates": files["dups"]}
    sample_part({**job, "scores": files["scores"], "text": files["text"], "out": files["out"]})
    sample = read_parquet(files["out"])
    kept = pa.table(
        {
            "key": keys[:2],
            "url": urls[:2],
            "caption": [m["txt"].decode() for m in members[:2]],
            "shard": [shard["path"]] * 2,
            "orig_width": [400, 400],
            "orig_height": [300, 300],
            "lang_score": [0.99, 0.98],
            "person_substituted": [True, True],
        }
    )
    write_version(
        os.path.join(root, "b", "v1"),
        dataset="b",
        version=1,
        config={"rejects": {"sample_per_reason": 5}},
        sources=[{"uri": "u", "rows": 5, "sha256": "0" * 64}],
        funnel=funnel_for(2, {"not_english": 1, "download_failed": 1, "duplicate_image": 1}),
        kept=kept,
        rejects=pa.table(
            {
                "key": [keys[i] for i in (2, 3, 4)],
                "url": [urls[i] for i in (2, 3, 4)],
                "stage": reasons.column("stage"),
                "reason": reasons.column("reason"),
            }
        ),
        shards=[shard],
        scores=scores,
        sample=sample,
    )
    code, out, _ = cli(capsys, "--root", root, "rejects", "b@1", "--json")
    assert code == 0 and [(e["reason"], e["sampled"]) for e in json.loads(out)["reasons"]] == [
        ("not_english", 1),
        ("download_failed", 1),
        ("duplicate_image", 1),
    ]
    m = manifest(root, "b@1")
    (dup,) = rejects.reason_rows(root, m, "duplicate_image")
    assert dup["duplicate_of"] == keys[0] and dup["thumbnail"] and dup["duplicate_thumbnail"]
    (failed,) = rejects.reason_rows(root, m, "download_failed")
    assert failed["thumbnail"] is None
    assert rejects.why_no_thumbnail(failed) == "not downloaded: failed_to_download (HTTP Error 500)"
    code, out, _ = cli(capsys, "--root", root, "rejects", "b@1", "--reason", "not_english")
    assert re.findall(r"^  lang_prob +(\S+)$", out, re.M) == ["0.877"]
    assert re.findall(r"^  caption +(.*)$", out, re.M) == ["<person> with a red house 2"]
