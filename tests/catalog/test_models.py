"""Model lineage records (catalog.models): run.json merging, evals.jsonl, lookups by dataset."""

from __future__ import annotations

import json
import os

import pytest
from support.versions import png

from catalog import storage
from catalog.errors import NotFound, UserError
from catalog.models import (
    EvalFileNotFound,
    RunError,
    RunNotFound,
    eval_file,
    list_runs,
    load_run,
    record_eval,
    record_run,
    run_uri,
    runs_for_dataset,
    set_slug,
)
from catalog.store import Catalog
from catalog.synthetic import make_version
from catalog.versions import VersionNotFound


def test_record_run_creates_and_merges(root):
    first = record_run(
        root,
        "clip-1",
        status="running",
        steps=100,
        step=0,
        config={"lr": 0.1},
        objectives={"clip": 1.0},
        datasets={"demo@latest": {"role": "train", "weight": 0.7}},
        checkpoints=[{"step": 50, "path": "ck/50"}],
    )
    assert first["run"] == "clip-1" and first["format"] == "lipforge.run/1" and first["created"] == first["updated"]
    assert list(first["datasets"]) == ["demo@1"], "NAME@latest is recorded resolved"
    second = record_run(
        root,
        "clip-1",
        status="finished",
        step=100,
        config={"lr": 0.2},
        datasets={"demo@1": {"samples_seen": 400}},
        checkpoints=[{"step": 100, "path": "ck/100"}, {"step": 50, "path": "ck/50b", "best": True}],
    )
    stored = storage.read_json(os.path.join(root, ".runs", "clip-1", "run.json"))
    assert stored == second
    assert stored["created"] == first["created"]
    assert stored["config"] == {"lr": 0.2} and stored["status"] == "finished" and stored["step"] == 100
    assert stored["steps"] == 100 and stored["objectives"] == {"clip": 1.0}, "fields not given are kept"
    assert stored["checkpoints"] == [{"step": 50, "path": "ck/50b", "best": True}, {"step": 100, "path": "ck/100"}]
    assert stored["datasets"] == {"demo@1": {"role": "train", "roles": ["train"], "weight": 0.7, "samples_seen": 400}}


def test_record_eval_appends_in_order_and_writes_files(root):
    first = record_eval(
        root,
        "clip-2",
        200,
        "demo-eval@1",
        {"zeroshot/shape/top1": 0.5, "retrieval/i2t_r1": float("nan")},
        chance={"zeroshot/shape/top1": 0.25},
        files={"patches.png": png()},
        checkpoint="ck/200",
    )
    record_eval(root, "clip-2", 100, "demo-eval", {"zeroshot/shape/top1": 0.3})
    run = load_run(root, "clip-2")
    assert [(e["step"], e["set"]) for e in run["evals"]] == [(200, "demo-eval@1"), (100, "demo-eval@1")]
    assert run["evals"][0] == first and first["metrics"]["retrieval/i2t_r1"] is None, "NaN is stored as null"
    assert first["files"] == ["evals/step-00000200/demo-eval-v1/patches.png"] and first["checkpoint"] == "ck/200"
    assert set(first) == {"step", "set", "checkpoint", "metrics", "chance", "files", "created"}
    assert run_uri(root, "clip-2") == os.path.join(root, ".runs", "clip-2")
    with open(os.path.join(run_uri(root, "clip-2"), first["files"][0]), "rb") as f:
        assert f.read() == png() == eval_file(root, "clip-2", first["files"][0])
    assert run["datasets"] == {"demo-eval@1": {"role": "eval", "roles": ["eval"]}}, "record_eval creates the run"
    lines = open(os.path.join(root, ".runs", "clip-2", "evals.jsonl")).read().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [200, 100]
    (summary,) = list_runs(root)
    assert summary["metrics"] == {"zeroshot/shape/top1": 0.5}, "latest by step; null skipped"
    assert summary["latest"]["demo-eval@1"]["step"] == 200 and summary["evals"] == 2
    with pytest.raises(EvalFileNotFound, match="recorded no evaluation file"):
        eval_file(root, "clip-2", "run.json")
    assert set_slug("demo-eval@1") == "demo-eval-v1"


def test_a_set_trained_on_and_evaluated_keeps_both_roles(root):
    record_run(root, "both", datasets={"demo@1": {"role": "train", "weight": 1.0, "samples_seen": 8}})
    record_eval(root, "both", 10, "demo@1", {"zeroshot/shape/top1": 0.9})
    entry = load_run(root, "both")["datasets"]["demo@1"]
    assert entry == {"role": "train", "roles": ["eval", "train"], "weight": 1.0, "samples_seen": 8}
    found = runs_for_dataset(root, "demo@1")
    assert [s["run"] for s in found["trained"]] == ["both"] == [s["run"] for s in found["evaluated"]]


def test_runs_for_dataset_resolves_latest(root):
    record_run(root, "old", datasets={"demo@1": {"role": "train"}})
    record_eval(root, "old", 5, "demo-eval@1", {"retrieval/i2t_r1": 0.1})
    make_version(root, "demo", 3, seed=3, views=False, url_offset=50)
    record_run(root, "new", datasets={"demo": {"role": "train"}})
    assert load_run(root, "new")["datasets"].keys() == {"demo@2"}
    for ref in ("demo@latest", "demo"):
        found = runs_for_dataset(root, ref)
        assert [s["run"] for s in found["trained"]] == ["new"] and found["evaluated"] == []
    assert [s["run"] for s in runs_for_dataset(root, "demo@v1")["trained"]] == ["old"]
    assert [s["run"] for s in runs_for_dataset(root, "demo-eval@latest")["evaluated"]] == ["old"]
    assert runs_for_dataset(root, "demo-eval@1")["trained"] == []
    with pytest.raises(VersionNotFound):
        runs_for_dataset(root, "nothing@latest")


@pytest.mark.parametrize("name", ["", ".hidden", "../up", "a/b", "a b", "-dash", "x" * 129, "naïve", "run\n"])
def test_bad_run_names_are_refused(root, name):
    with pytest.raises(RunError, match="run name") as info:
        record_run(root, name, status="running")
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    with pytest.raises(RunError):
        record_eval(root, name, 1, "demo@1", {"a": 1.0})
    assert not os.path.exists(os.path.join(root, ".runs")) or os.listdir(os.path.join(root, ".runs")) == []


def test_bad_fields_are_refused(root):
    with pytest.raises(RunError, match="status 'done'"):
        record_run(root, "r", status="done")
    with pytest.raises(RunError, match="set by the catalog"):
        record_run(root, "r", created="yesterday")
    with pytest.raises(RunError, match="role 'test'"):
        record_run(root, "r", datasets={"demo@1": {"role": "test"}})
    with pytest.raises(RunError, match="metric 'a'"):
        record_eval(root, "r", 1, "demo@1", {"a": "high"})
    with pytest.raises(RunError, match="file name"):
        record_eval(root, "r", 1, "demo@1", {"a": 1.0}, files={"ok.png": b"x", "../x.png": b"x"})
    with pytest.raises(RunError, match="step"):
        record_eval(root, "r", -1, "demo@1", {"a": 1.0})
    assert list_runs(root) == [] and not os.path.exists(os.path.join(root, ".runs")), "nothing written"


def test_run_not_found_names_the_runs_there(root):
    with pytest.raises(RunNotFound, match="no runs are recorded there") as info:
        load_run(root, "ghost")
    assert isinstance(info.value, NotFound) and "'ghost'" in str(info.value)
    record_run(root, "b-run", status="running")
    record_run(root, "a-run", status="running")
    with pytest.raises(RunNotFound, match=r"no run 'ghost' under .* \(known runs: a-run, b-run\)"):
        load_run(root, "ghost")


def test_runs_are_invisible_to_the_dataset_index(root):
    record_run(root, "v1", datasets={"demo@1": {"role": "train"}})  # a run named like a version dir
    record_eval(root, "v1", 1, "demo-eval@1", {"a": 1.0}, files={"p.png": png()})
    catalog = Catalog(root)
    catalog.refresh()
    assert catalog.index.datasets() == ["demo", "demo-eval"] and catalog.index.problems() == []
    assert [(r["dataset"], r["version"]) for r in catalog.index.versions()] == [("demo", 1), ("demo-eval", 1)]


@pytest.mark.slow
def test_records_on_an_s3_root(tmp_path):
    from support.moto import moto_s3

    with moto_s3("lipforge-models-test", {"LIPFORGE_CACHE": str(tmp_path / "cache")}) as bucket:
        root = f"{bucket}/catalog"
        make_version(root, "web", 3, seed=4, views=False)
        record_run(root, "s3-run", status="running", datasets={"web@latest": {"role": "train"}})
        record_run(root, "s3-run", checkpoints=[{"step": 1, "path": f"{root}/ck/1"}])
        line = record_eval(root, "s3-run", 1, "web@1", {"zeroshot/shape/top1": 0.4}, files={"a.png": png()})
        record_eval(root, "s3-run", 2, "web@1", {"zeroshot/shape/top1": 0.6})
        assert storage.exists(f"{root}/.runs/s3-run/run.json")
        assert eval_file(root, "s3-run", line["files"][0]) == png()
        run = load_run(root, "s3-run")
        assert [e["step"] for e in run["evals"]] == [1, 2] and run["checkpoints"] == [
            {"step": 1, "path": f"{root}/ck/1"}
        ]
        assert run["datasets"]["web@1"]["roles"] == ["eval", "train"]
        assert [s["run"] for s in runs_for_dataset(root, "web")["evaluated"]] == ["s3-run"]
        assert list_runs(root)[0]["metrics"] == {"zeroshot/shape/top1": 0.6}
