"""Local paths and s3:// URIs behind one small API (fsspec underneath).

Writes are atomic: local files go to a temporary name in the same directory and are
renamed into place; S3 objects are uploaded whole (an object exists only once its upload
completed). The S3 endpoint comes from the standard `AWS_ENDPOINT_URL` variable, so tests
point it at moto's server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from typing import Any, BinaryIO

import fsspec


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for `uri` and the path inside it."""
    uri = str(uri)
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
        opts: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        return fsspec.filesystem("s3", skip_instance_cache=False, **opts), uri[len("s3://") :]
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with '/' and normalise '..'."""
    uri = str(uri)
    if is_remote(uri):
        scheme, _, rest = uri.partition("://")
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, *parts))}"
    return os.path.normpath(os.path.join(uri, *parts))


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def listdir(uri: str) -> list[str]:
    """Names (not paths) directly under `uri`; empty when it does not exist."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return f.read()


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri).decode("utf-8"))


def open_read(uri: str) -> BinaryIO:
    fs, path = filesystem(uri)
    return fs.open(path, "rb")


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` at `uri` atomically (temp + rename locally; whole-object upload on S3)."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        fs.pipe_file(path, data)
        return
    directory = os.path.dirname(os.path.abspath(uri))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, uri)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))


def upload_file(local_path: str, uri: str) -> None:
    """Copy a finished local file to `uri` atomically."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        fs.put_file(local_path, path)
        return
    if os.path.abspath(local_path) == os.path.abspath(uri):
        return
    with open(local_path, "rb") as f:
        write_bytes(uri, f.read())


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)
