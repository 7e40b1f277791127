"""Recorded scores, explain and whatif on a real build of the sample web corpus (Ray, img2dataset, HTTP on 127.0.0.1).

One build is replayed: `explain --row` must give the build's own decision for every row,
`explain --caption` the text stage's decision for the raw captions, and `whatif` under
three settings the fates a real rebuild with those settings decides.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from support.catalog_server import raw_get, serve
from support.corpus_names import raw_names

from catalog.reasons import KEEP
from catalog.scores import SAMPLE_SCHEMA, SCHEMA
from pipelines.filters import TextChain
from pipelines.sampleweb.corpus import generate
from pipelines.stages.cli import build_config
from pipelines.stages.config import BuildConfig
from pipelines.stages.explain import explain_caption, explain_row
from pipelines.stages.pipeline import run_build
from pipelines.stages.replay import UNKNOWN, Replay, load_built
from pipelines.stages.whatif import whatif
from pipelines.webserver import CorpusServer, free_port

N = 400
REPO = Path(__file__).resolve().parents[2]
SETTINGS = [  # each changes some fates on this corpus (asserted): text, image, dedup, and a limit img2dataset applies
    "filter.checks.not_english.short_foreign_prob=0.3",
    "filter.checks.image_too_small.min_size=300",
    "dedup.max_hamming=16",
    "filter.checks.too_many_pixels.max_pixels=200000",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    port = free_port()
    generate(out, n=N, seed=23, base_url=f"http://127.0.0.1:{port}")
    with CorpusServer(out, port=port):
        yield out


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    cfg = BuildConfig.model_validate(
        {
            "dataset": "q",
            "root": str(root),
            "source": {"urls": str(corpus / "urls.parquet")},
            "download": {"samples_per_shard": 200, "timeout": 3, "thread_count": 16},
            "rejects": {"sample_per_reason": 5},
            "ray": {"num_cpus": 2},
        }
    )
    run_build(cfg, log=lambda _: None)
    return str(root)


def test_scores_cover_every_row_and_replay_to_the_build(built):
    b = load_built(built, "q@1")
    assert b.scores.schema == SCHEMA and b.scores.num_rows == N
    assert b.scores.column("row").to_pylist() == list(range(N))
    kept = set(pq.read_table(Path(built) / "q" / "v1" / "kept.parquet").column("key").to_pylist())
    rejects = pq.read_table(Path(built) / "q" / "v1" / "rejects.parquet").to_pylist()
    recorded = dict(zip(b.scores.column("key").to_pylist(), b.scores.column("reason").to_pylist()))
    assert {k for k, r in recorded.items() if r is None} == kept
    assert {r["key"]: r["reason"] for r in rejects} == {k: r for k, r in recorded.items() if r is not None}
    # the build's own config, replayed on its scores, decides every row as the build did
    fates = Replay(b.cfg).fates(b.scores)
    assert [f for f, _ in fates] == b.scores.column("reason").to_pylist()
    assert [s for _, s in fates] == b.scores.column("stage").to_pylist()
    reasons = set(recorded.values())
    assert {"not_english", "download_failed", "image_too_small", "duplicate_image"} <= reasons
    # every downloaded image is hashed, whichever check rejected it; a duplicate names its kept representative
    for r in b.scores.to_pylist():
        if r["download_status"] == "success" and r["decoded"]:
            assert r["phash"] and r["orig_width"] > 0
        if r["reason"] == "duplicate_image":
            assert r["duplicate_of"] in kept
        if r["stage"] == "text":
            assert r["download_status"] is None and r["lang"] is not None and r["repeat_count"] >= 1


def test_rejects_sample_is_capped_scrubbed_and_has_thumbnails(built, corpus):
    t = pq.read_table(Path(built) / "q" / "v1" / "rejects_sample.parquet")
    assert t.schema == SAMPLE_SCHEMA
    rows = t.to_pylist()
    by_reason: dict[str, list] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
    assert all(len(v) <= 5 for v in by_reason.values()) and len(by_reason) >= 5
    for r in by_reason["image_too_small"] + by_reason["duplicate_image"]:
        with Image.open(io.BytesIO(r["thumbnail"])) as im:
            assert max(im.size) <= 160
    assert all(r["duplicate_thumbnail"] for r in by_reason["duplicate_image"])
    assert all(r["thumbnail"] is None for r in rows if r["stage"] == "text")
    names = raw_names(corpus)
    text = " ".join(r["caption"] or "" for r in rows)
    assert names and not [n for n in names if n in text]
    assert "<person>" in " ".join(
        (r["caption"] or "") for r in pq.read_table(Path(built) / "q" / "v1" / "kept.parquet").to_pylist()
    )


def test_explain_row_gives_the_builds_decision_for_every_row(built):
    b = load_built(built, "q@1")
    for row, reason, stage in zip(*(b.scores.column(c).to_pylist() for c in ("row", "reason", "stage"))):
        e = explain_row(built, "q@1", row)
        assert (e.reason, e.stage) == (reason, stage) == e.recorded


def test_explain_caption_gives_the_text_stages_decision(built, corpus):
    b = load_built(built, "q@1")
    chain = TextChain(b.cfg.filter)
    source = pq.read_table(corpus / "urls.parquet").to_pylist()
    stages = b.scores.column("stage").to_pylist()
    reasons = b.scores.column("reason").to_pylist()
    picked = [i for i in range(N) if stages[i] == "text"][:40] + [i for i in range(N) if stages[i] != "text"][:20]
    for i in picked:
        e = explain_caption(b.cfg, source[i]["caption"], chain=chain)
        text_checks = [c for c in e.checks if c.stage == "text"]
        first = next((c.reason for c in text_checks if c.reason), None)
        assert first == (reasons[i] if stages[i] == "text" else None), i


@pytest.mark.parametrize("setting", SETTINGS)
def test_whatif_equals_a_real_rebuild(built, setting):
    w = whatif(built, "q@1", [setting])
    keys = w.built.scores.column("key").to_pylist()
    changed = sum(1 for a, b in zip(w.before, w.after) if a != b)
    assert changed > 0, f"{setting} changes no fate on this corpus: the comparison would prove nothing"
    assert UNKNOWN not in w.after
    cfg = build_config("q@1", built, [setting])
    manifest = run_build(cfg, log=lambda _: None)
    rebuilt = load_built(built, f"q@{manifest['version']}")
    real = rebuilt.scores.select(["key", "reason", "stage"]).to_pylist()
    assert dict(zip(keys, zip(w.after, w.stages_after))) == {r["key"]: (r["reason"] or KEEP, r["stage"]) for r in real}


def cli(package: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m PACKAGE ARGS` as a user runs it (text output captured)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", package, *args], capture_output=True, text=True, env=env)


def test_whatif_and_explain_commands(built):
    out = cli("pipelines", "whatif", "q@1", "--root", built, "--set", SETTINGS[0]).stdout
    assert "not_english" in out and "funnel" in out
    assert f"python -m pipelines build q@1 --root {built} --set {SETTINGS[0]}" in out
    bad = cli("pipelines", "whatif", "q@1", "--root", built, "--set", "filter.max_caption_chars=50")
    assert bad.returncode == 2 and "cannot be replayed" in bad.stderr and "Traceback" not in bad.stderr
    out = cli("pipelines", "explain", "--version", "q@1", "--row", "3", "--root", built).stdout
    assert "the build decided" in out and "not_english" in out


def test_rejects_pages_and_cli_on_the_real_build(built, corpus):
    """Every reason of the real build has a gallery with thumbnails where an image was fetched; no raw name shows."""
    names = raw_names(corpus)
    sample = pq.read_table(Path(built) / "q" / "v1" / "rejects_sample.parquet").to_pylist()
    proc, port = serve(built)
    try:
        status, _, page = raw_get(port, "/d/q/1")
        assert status == 200 and b"/d/q/1/rejects/not_english" in page
        for reason in {r["reason"] for r in sample}:
            status, _, page = raw_get(port, f"/d/q/1/rejects/{reason}")
            assert status == 200 and not [n for n in names if n.encode() in page], reason
        fetched = next(r for r in sample if r["reason"] == "image_too_small")
        status, media, body = raw_get(port, f"/d/q/1/rejects/image_too_small/{fetched['key']}.jpg")
        assert status == 200 and media == "image/jpeg" and body == fetched["thumbnail"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = cli("catalog", "--root", built, "rejects", "q@1", "--reason", "duplicate_image").stdout
    assert all(r["key"] in out and r["duplicate_of"] in out for r in sample if r["reason"] == "duplicate_image")
