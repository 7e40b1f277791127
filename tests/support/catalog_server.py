"""`python -m catalog serve` as a real subprocess on 127.0.0.1, and raw GETs against it (the web e2e tests)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time

from pipelines.webserver import free_port


def serve(root: str, *extra: str) -> tuple[subprocess.Popen, int]:
    """Start the catalog web app over `root` (no token unless `extra` gives one); wait until it listens."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "LIPFORGE_CATALOG_TOKEN": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog", "--root", root, "serve", "--port", str(port), *extra],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"catalog serve exited: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("catalog serve did not start in 60 s")


def raw_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of GET `path` exactly as written (no client-side normalisation of '..' or %2f)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.getheader("content-type", ""), resp.read()
