"""A real moto S3 server on 127.0.0.1 for tests that read and write s3:// roots."""

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def moto_s3(bucket: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A real `moto_server` subprocess on 127.0.0.1 with one bucket; the AWS variables
    (and `extra_env`) point at it while the block runs. Yields `s3://bucket`."""
    import boto3

    from pipelines.webserver import free_port

    port = free_port()
    # this venv's moto first: another on PATH (e.g. a pyenv shim's older moto) may reject the
    # multipart uploads of pyarrow's S3 client that Ray Train uses
    ours = Path(sys.executable).parent / "moto_server"
    exe = str(ours) if ours.exists() else shutil.which("moto_server") or str(ours)
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        **(extra_env or {}),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                boto3.client("s3").create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield f"s3://{bucket}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
