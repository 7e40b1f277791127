"""`python -m pipelines build` with an `augment:` section: the clean version, then its view version.

A small sample corpus (60 rows) on 127.0.0.1, a real local Ray, img2dataset, and
`augment_version` (EDA + global crops only, to stay quick).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from pipelines.sampleweb.corpus import generate
from pipelines.webserver import CorpusServer, free_port

REPO = Path(__file__).resolve().parents[2]
OWN_LINE = re.compile(  # lipforge's bars are "lower-case name: NN%|..." (Ray's own start with a capital)
    r"^([a-z][a-z0-9 /]*: +\d+%\|.*|build: .*|stage +in +kept .*|"
    r"(source|text|download|image|dedup|shard|total) +\d+ +\d+ +\d+.*)$"
)


def test_build_publishes_view_version_after_clean_one(tmp_path):
    port = free_port()
    corpus, root = tmp_path / "corpus", tmp_path / "root"
    generate(corpus, n=60, seed=3, base_url=f"http://127.0.0.1:{port}")
    cfg = {
        "dataset": "demo",
        "root": str(root),
        "source": {"urls": str(corpus / "urls.parquet")},
        "ray": {"num_cpus": 2},
        "download": {"timeout": 3, "thread_count": 8},
        "augment": {"views": ["eda", "global"], "num_workers": 1},
    }
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(cfg))
    with CorpusServer(corpus, port=port, slow_seconds=4):
        done = subprocess.run(
            [sys.executable, "-m", "pipelines", "build", str(tmp_path / "build.yaml")],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    # the console holds lipforge's own lines only: stage bars, the funnel, where the log is
    lines = [line for line in re.split(r"[\r\n]", done.stdout + done.stderr) if line.strip()]
    foreign = [line for line in lines if not OWN_LINE.match(line)]
    assert not foreign, foreign[:10]
    log = re.search(r"build: full log in (\S+)", done.stdout).group(1)
    assert "Started a local Ray instance" in Path(log).read_text()  # Ray's own lines went there
    v1 = json.loads((root / "demo" / "v1" / "manifest.json").read_text())
    v2 = json.loads((root / "demo" / "v2" / "manifest.json").read_text())
    assert v1["parents"] == [] and v1["schema"]["views"] == {"image": [], "text": []} and v1["samples"] > 0
    assert v1["config"]["augment"]["views"] == ["eda", "global"]
    assert v2["parents"] == ["demo@1"] and v2["samples"] == v1["samples"]
    assert set(v2["schema"]["views"]["image"]) >= {"g0.jpg", "g1.jpg"} and set(v2["schema"]["views"]["text"]) >= {
        "eda0.txt",
        "eda1.txt",
    }
    kept = set(pq.read_table(root / "demo" / "v1" / "kept.parquet").column("key").to_pylist())
    members: dict[str, set[str]] = {}
    for shard in v2["shards"]:
        assert shard["path"].startswith("v2/shards/")
        with tarfile.open(root / "demo" / shard["path"]) as tar:
            for name in tar.getnames():
                key, _, ext = name.partition(".")
                members.setdefault(key, set()).add(ext)
    assert set(members) == kept
    assert all(m >= {"jpg", "txt", "json", "g0.jpg", "g1.jpg", "eda0.txt", "eda1.txt"} for m in members.values())
