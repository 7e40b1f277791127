"""Local paths and s3:// URIs behind one small API (fsspec underneath).

Writes are atomic: local files go to a temporary name in the same directory and are
renamed into place; S3 objects are uploaded whole (an object exists only once its upload
completed). The S3 endpoint comes from the standard `AWS_ENDPOINT_URL` variable, so tests
point it at moto's server on 127.0.0.1 (`s3_endpoint()` is the one lookup, also used for
Ray Train's checkpoint storage). An s3:// root that cannot be reached (no server, bad
credentials, no such bucket) raises `StorageError`, a UserError naming the URI.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from typing import Any, BinaryIO

import fsspec

from catalog.errors import UserError

_S3_CONFIG = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}}


class StorageError(UserError, OSError):
    """A remote location cannot be reached or read (the message names the URI and the cause)."""


def s3_endpoint() -> str | None:
    """The S3 endpoint override: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (None: AWS itself)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for `uri` and the path inside it."""
    uri = str(uri)
    if uri.startswith("s3://"):
        endpoint = s3_endpoint()
        opts: dict[str, Any] = {"config_kwargs": _S3_CONFIG}
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        return fsspec.filesystem("s3", skip_instance_cache=False, **opts), uri[len("s3://") :]
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def check_reachable(uri: str) -> None:
    """Fail early, before any work, when a remote `uri` cannot be reached (StorageError)."""
    if not is_remote(uri):
        return
    fs, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError:
        raise StorageError(f"{uri}: bucket {bucket!r} does not exist") from None
    except PermissionError:
        raise StorageError(f"{uri}: access to bucket {bucket!r} denied with these credentials") from None
    except Exception as exc:  # noqa: BLE001 - botocore/aiohttp/OSError: whatever the transport raises
        where = s3_endpoint() or "AWS"
        raise StorageError(f"{uri}: cannot reach the object store at {where} ({type(exc).__name__}: {exc})") from None


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
    """Names (not paths) directly under `uri`; empty when it does not exist. On S3 the folder's
    own marker object (a zero-byte `prefix/`, which `ls` lists) is not one of them."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    own = path.rstrip("/")
    entries = (p.rstrip("/") for p in fs.ls(path, detail=False))
    return sorted(posixpath.basename(p) for p in entries if p != own)


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
    directory = os.path.dirname(os.path.abspath(uri))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(local_path, tmp)  # streamed, not read whole into memory
        os.replace(tmp, uri)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)
