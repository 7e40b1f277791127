"""The catalog reads a version published by the ingestion build's writer (pipelines.stages.outputs)."""

from __future__ import annotations

import json
import os
import random

import pyarrow as pa

from catalog.__main__ import run
from catalog.keys import sample_key
from catalog.publish import describe_shard
from catalog.shards import iter_samples, write_shard
from catalog.synthetic import funnel_for, make_sample
from pipelines.stages.outputs import write_version


def test_catalog_reads_build_writer_output(tmp_path, capsys):
    root = str(tmp_path / "root")
    rng = random.Random(7)
    samples = [
        (sample_key(f"http://h/{i}.jpg"), make_sample(f"http://h/{i}.jpg", f"a red house number {i}", rng, views=False))
        for i in range(6)
    ]
    write_shard(os.path.join(root, "built", "v1", "shards", "shard-000000.tar"), [(k, m.items()) for k, m in samples])
    shard = describe_shard(os.path.join(root, "built"), "v1/shards/shard-000000.tar")
    metas = [json.loads(m["json"]) for _, m in iter_samples(os.path.join(root, "built", shard["path"]))]
    kept = pa.table(
        {
            "key": [k for k, _ in samples],
            "url": [m["url"] for m in metas],
            "caption": [m["txt"].decode() for _, m in samples],
            "shard": [shard["path"]] * 6,
            "orig_width": [m["orig_width"] for m in metas],
            "orig_height": [m["orig_height"] for m in metas],
            "lang_score": [m["lang_score"] for m in metas],
            "person_substituted": [False] * 6,
        }
    )
    rejects = pa.table({"key": ["k"], "url": ["http://h/x.jpg"], "stage": ["text"], "reason": ["empty_caption"]})
    write_version(
        os.path.join(root, "built", "v1"),
        dataset="built",
        version=1,
        config={},
        sources=[{"uri": "u", "rows": 7, "sha256": "0" * 64}],
        funnel=funnel_for(6, {"empty_caption": 1}),
        kept=kept,
        rejects=rejects,
        shards=[shard],
    )
    assert run(["--root", root, "show", "built@1", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["manifest"]
    assert m["samples"] == 6 and sum(m["stats"]["caption_words"]["counts"]) == 6
    assert run(["--root", root, "verify", "built@1"]) == 0
    capsys.readouterr()
    assert run(["--root", root, "samples", "built@1", "--n", "6", "--json"]) == 0
    assert [r["caption"] for r in json.loads(capsys.readouterr().out)] == [f"a red house number {i}" for i in range(6)]
