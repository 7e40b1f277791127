"""`python -m catalog models` and `show RUN` / `show NAME@N` with recorded runs (catalog.models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support.versions import png

from catalog.__main__ import run
from catalog.models import record_eval, record_run


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def record_demo_run(root: str, name: str = "clip-demo") -> None:
    record_run(
        root,
        name,
        status="finished",
        steps=200,
        step=200,
        code_version="0.1.0+abc123",
        objectives={"clip": 1.0, "filip": 0.5},
        datasets={"demo@1": {"role": "train", "weight": 1.0, "samples_seen": 3200}},
        checkpoints=[{"step": 100, "path": "ck/step-100"}, {"step": 200, "path": "ck/step-200"}],
        config={"model": {"preset": "tiny"}},
    )
    chance = {"zeroshot/shape/top1": 0.25}
    record_eval(root, name, 100, "demo-eval@1", {"zeroshot/shape/top1": 0.41, "retrieval/i2t_r1": 0.2}, chance)
    record_eval(
        root,
        name,
        200,
        "demo-eval@1",
        {"zeroshot/shape/top1": 0.62, "retrieval/i2t_r1": 0.35, "loss/val": 1.5},
        chance,
        files={"word-patch.png": png()},
        checkpoint="ck/step-200",
    )


def test_models_table(root, capsys):
    code, out, _ = cli(capsys, "--root", root, "models")
    assert code == 0 and out.strip() == f"no runs recorded under {root}"
    record_demo_run(root)
    code, out, _ = cli(capsys, "--root", root, "models")
    header, _, row = out.splitlines()
    assert code == 0 and header.split()[:4] == ["run", "status", "step", "trained"]
    assert row.startswith("clip-demo") and "finished" in row and "200/200" in row and "demo@1" in row
    assert "demo-eval@1 step 200: retrieval/i2t_r1=0.35 zeroshot/shape/top1=0.62" in row
    code, out, _ = cli(capsys, "--root", root, "models", "--json")
    (summary,) = json.loads(out)["runs"]
    assert summary["trained"] == ["demo@1"] and summary["evaluated"] == ["demo-eval@1"]


def test_show_run(root, capsys):
    record_demo_run(root)
    code, out, _ = cli(capsys, "--root", root, "show", "clip-demo")
    assert code == 0
    assert out.splitlines()[0] == "run clip-demo  status finished  step 200/200  code 0.1.0+abc123"
    assert "objectives: clip=1, filip=0.5" in out
    assert "python -m catalog show demo@1" in out and "3200" in out
    assert "ck/step-100" in out and "ck/step-200" in out
    section = out[out.index("evaluations on demo-eval@1") :].splitlines()
    assert section[1].split() == ["step", "retrieval/i2t_r1", "zeroshot/shape/top1", "checkpoint"]
    assert section[3].split() == ["chance", "-", "0.25", "-"]
    assert section[4].split() == ["100", "0.2", "0.41", "-"] and section[5].split() == [
        "200",
        "0.35",
        "0.62",
        "ck/step-200",
    ]
    assert os.path.join(root, ".runs", "clip-demo", "evals", "step-00000200", "demo-eval-v1", "word-patch.png") in out
    code, out, _ = cli(capsys, "--root", root, "show", "clip-demo", "--json")
    assert [e["step"] for e in json.loads(out)["evals"]] == [100, 200]


def test_show_version_lists_its_runs(root, capsys):
    record_demo_run(root)
    code, out, _ = cli(capsys, "--root", root, "show", "demo@1")
    assert code == 0 and "funnel:" in out
    runs = out[out.rindex("\nruns\n") :]
    assert "trained on it: clip-demo" in runs and "evaluated on it: -" in runs
    code, out, _ = cli(capsys, "--root", root, "show", "demo-eval")
    assert "trained on it: -" in out and "evaluated on it: clip-demo" in out
    code, out, _ = cli(capsys, "--root", root, "show", "demo-eval@1", "--json")
    runs = json.loads(out)["runs"]
    assert runs["trained"] == [] and [s["run"] for s in runs["evaluated"]] == ["clip-demo"]


def test_a_run_named_like_a_dataset(root, capsys):
    record_demo_run(root, "demo")
    code, out, _ = cli(capsys, "--root", root, "show", "demo")
    assert code == 0 and "funnel:" in out and "python -m catalog show --run demo" in out
    code, out, _ = cli(capsys, "--root", root, "show", "--run", "demo")
    assert code == 0 and out.startswith("run demo  status finished")


def test_unknown_name_is_one_error_line(root):
    record_demo_run(root)
    proc = subprocess.run(
        [sys.executable, "-m", "catalog", "--root", root, "show", "nothing"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: no dataset 'nothing' and no run 'nothing' under {root} (datasets: demo, demo-eval; runs: clip-demo)"
    ]


def test_unknown_run_with_flag(root, capsys):
    code, _, err = cli(capsys, "--root", root, "show", "--run", "ghost")
    assert code == 2 and err.strip() == f"error: no run 'ghost' under {root} (no runs are recorded there)"
