"""Mistakes a user makes print one `error:` line naming what is wrong, exit 2, no traceback.

Each case runs the real command line in a subprocess (what a person types), before or
instead of any Ray work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.webserver import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # each case starts the real CLI in a subprocess (a few seconds of imports each)


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def one_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    message = done.stderr[done.stderr.index("error:") :]
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "urls.parquet"
    row = {"url": ["http://127.0.0.1:1/a.jpg"], "caption": ["a red circle on a table"], "scene": [None]}
    pq.write_table(pa.table(row, schema=pa.schema([(k, pa.string()) for k in row])), path)  # demo.yaml keeps scene
    return path


def test_bad_config_key_names_file_and_key(source: Path, tmp_path: Path):
    done = run(
        "pipelines",
        "build",
        "configs/demo.yaml",
        "--set",
        f"root={tmp_path}",
        "--set",
        f"source.urls={source}",
        "--set",
        "download.imagesize=3",
    )
    one_error(done, "configs/demo.yaml", "download.imagesize", "unknown key", "image_size")


def test_missing_config_file():
    one_error(run("pipelines", "build", "configs/no-such.yaml"), "configs/no-such.yaml", "not found")


def test_unreadable_source_names_file_and_column(tmp_path: Path):
    missing = tmp_path / "nope.parquet"
    one_error(
        run("pipelines", "build", "configs/demo.yaml", "--set", f"root={tmp_path}", "--set", f"source.urls={missing}"),
        str(missing),
        "file not found",
    )
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"link": ["http://x/a.jpg"], "caption": ["a cat"]}), wrong)
    one_error(
        run("pipelines", "build", "configs/demo.yaml", "--set", f"root={tmp_path}", "--set", f"source.urls={wrong}"),
        str(wrong),
        "column 'url' not found",
        "link",
    )
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    one_error(
        run("pipelines", "build", "configs/demo.yaml", "--set", f"root={tmp_path}", "--set", f"source.urls={corrupt}"),
        str(corrupt),
        "not a readable parquet",
    )


def test_kept_columns_name_file_column_and_key(tmp_path: Path):
    old = tmp_path / "old.parquet"  # a corpus written before the scene column existed
    pq.write_table(pa.table({"url": ["http://x/a.jpg"], "caption": ["a cat"]}), old)
    one_error(
        run("pipelines", "build", "configs/demo.yaml", "--set", f"root={tmp_path}", "--set", f"source.urls={old}"),
        str(old),
        "column 'scene' not found",
        "source.keep_columns",
    )
    one_error(
        run("pipelines", "build", "configs/demo-eval.yaml", "--set", "source.keep_columns=[scene,phash]"),
        "configs/demo-eval.yaml",
        "source.keep_columns",
        "'phash' is a built-in field of the sample json",
    )


def test_unreachable_s3_root(source: Path):
    closed = free_port()  # nothing listens there
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = run(
        "pipelines",
        "build",
        "configs/demo.yaml",
        "--set",
        "root=s3://lipforge-test/data",
        "--set",
        f"source.urls={source}",
        env=env,
    )
    one_error(done, "s3://lipforge-test/data", "cannot reach the object store", f"127.0.0.1:{closed}")


def test_missing_dataset_or_version(tmp_path: Path):
    (tmp_path / "demo").mkdir()
    one_error(run("catalog", "--root", str(tmp_path), "show", "demo@latest"), "dataset 'demo'", "no complete version")
    one_error(run("pipelines", "augment", "nope@3", "configs/demo.yaml", "--root", str(tmp_path)), "dataset 'nope'")
    one_error(run("pipelines", "refresh", "nope", "--root", str(tmp_path)), "dataset 'nope'", "run `build` first")
