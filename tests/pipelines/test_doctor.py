"""`python -m pipelines.doctor` for real: all OK here, and a clear failure when WordNet and the
lexicons are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.doctor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_doctor_all_ok_after_prepare(tmp_path):
    env = {**os.environ, "LIPFORGE_CACHE": str(tmp_path / "cache")}
    assert subprocess.run([sys.executable, "-m", "pipelines.assets"], cwd=REPO, env=env, check=False).returncode == 0
    done = run_doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["check", "status", "detail"]
    for check in (
        "fastText LID",
        "spaCy NER",
        "WordNet",
        "name/word lexicons",
        "apertium",
        "CLIP BPE tokenizer",
        "torch version",
        "Ray version",
    ):
        row = next(line for line in lines if line.startswith(check))
        assert row[len(check) :].split()[0] == "OK", row
    assert "vocab 49,408" in done.stdout and "2.14.1" in done.stdout and "2.60.0" in done.stdout
    assert "doctor: all assets OK" in done.stdout


@pytest.mark.slow  # a real Ray cluster or a CLI subprocess
def test_doctor_fails_naming_missing_wordnet_and_fix(tmp_path):
    env = {**os.environ, "LIPFORGE_CACHE": str(tmp_path / "empty")}
    done = run_doctor(env)
    assert done.returncode == 1
    wordnet_row = next(line for line in done.stdout.splitlines() if line.startswith("WordNet"))
    assert "MISSING" in wordnet_row and "lexnames" in wordnet_row
    lexicon_row = next(line for line in done.stdout.splitlines() if line.startswith("name/word lexicons"))
    assert "MISSING" in lexicon_row and "names.tsv not found" in lexicon_row
    assert "doctor: 2 check(s) failed" in done.stdout
    assert "fix: run `make setup` (it calls `python -m pipelines assets`)" in done.stdout
