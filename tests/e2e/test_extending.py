"""docs/extending.md's claim: a filter, a view and an objective are each one module plus one
YAML line. `support/extensions.py` registers one of each from outside their packages; a real
build (local Ray, img2dataset over 127.0.0.1) selects the filter and the view with one line
each, and a training step on the view version selects the objective with one line.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray
import torch

from augment.views import VIEWS
from catalog.config import validate
from pipelines.filters import FILTERS
from pipelines.sampleweb.corpus import generate
from pipelines.stages.config import BuildConfig
from pipelines.stages.pipeline import run_build
from pipelines.webserver import CorpusServer, free_port
from training.config import TrainConfig
from training.data import ShardStream, make_loader, resolve_shards
from training.objectives import OBJECTIVES
from training.train import check_run
from training.trainee import build_trainee, run_batch_spec

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def ext():
    """The extension module, registered for this test only (other tests see the built-ins alone)."""
    module = importlib.import_module("support.extensions")
    yield module
    FILTERS.unregister("test_no_word")
    VIEWS.unregister("test_gray")
    OBJECTIVES.unregister("test_gray_clip")
    sys.modules.pop("support.extensions", None)


def test_one_module_and_one_yaml_line_each(tmp_path, ext):
    port = free_port()
    corpus, root = tmp_path / "corpus", tmp_path / "root"
    generate(corpus, n=120, seed=5, base_url=f"http://127.0.0.1:{port}")
    captions = {r["url"]: r["caption"] or "" for r in pq.read_table(corpus / "urls.parquet").to_pylist()}
    assert any(ext.WORD in c.lower().split() for c in captions.values())  # the corpus has rows for the filter
    cfg = validate(
        BuildConfig,
        {
            "dataset": "ext",
            "root": str(root),
            "source": {"urls": str(corpus / "urls.parquet")},
            "download": {"timeout": 3, "thread_count": 8},
            "filter": {"checks": {"test_no_word": {}}},  # the filter's one line
            "augment": {"views": ["test_gray"], "num_workers": 1},  # the view's one line
        },
    )
    # Ray workers import the extensions too (a plugin module on their path and a setup hook)
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    ray.init(
        address="local",  # never a cluster that `ray start` left on this machine
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"worker_process_setup_hook": "support.extensions.setup", "env_vars": env},
    )
    try:
        with CorpusServer(corpus, port=port, slow_seconds=4):
            run_build(cfg, log=lambda line: None)
    finally:
        ray.shutdown()

    data = root / "ext"
    kept = pq.read_table(data / "v1" / "kept.parquet").to_pylist()
    assert kept and not any(ext.WORD in r["caption"].lower().split() for r in kept)
    rejects = pq.read_table(data / "v1" / "rejects.parquet").to_pylist()
    by_word = [r for r in rejects if ext.WORD in captions[r["url"]].lower().split() and r["reason"] == "sensitive"]
    assert by_word and all(r["stage"] == "text" for r in by_word)

    v2 = json.loads((data / "v2" / "manifest.json").read_text())
    assert v2["schema"]["views"] == {"image": ["gray.jpg"], "text": []} and "gray.jpg" in v2["schema"]["keys"]
    with tarfile.open(data / v2["shards"][0]["path"]) as tar:
        assert sum(name.endswith(".gray.jpg") for name in tar.getnames()) == v2["shards"][0]["samples"]

    train = TrainConfig(
        dataset="ext@2", root=str(root), batch_size=4, objectives={"clip": {}, "test_gray_clip": {"weight": 0.5}}
    )  # the objective's one line
    check_run(train)  # the version holds every member the objectives declare
    trainee = build_trainee(train)
    _, urls = resolve_shards(str(root), train.dataset)
    stream = ShardStream(
        urls, run_batch_spec(train, trainee.model.image_size), batch_size=4, samples_per_epoch=8, num_workers=0
    )
    batch = next(iter(make_loader(stream)))
    optimizer = torch.optim.SGD(trainee.parameters(), lr=0.1)
    before = [p.detach().clone() for p in trainee.model.visual.parameters()]
    total, losses = trainee(batch)
    total.backward()
    optimizer.step()
    assert set(losses) == {"clip", "test_gray_clip"} and torch.isfinite(total)
    assert any(not torch.equal(a, p) for a, p in zip(before, trainee.model.visual.parameters()))
