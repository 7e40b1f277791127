"""Serve a sample web corpus (`python -m pipelines sample-web`) over real HTTP.

`python -m pipelines serve-web DIR [--port 8765] [--host 127.0.0.1] [--slow-seconds 12]`
serves DIR/images and DIR/eval with the stdlib `ThreadingHTTPServer`. The URL path picks the server's
behaviour, so a corpus row says in its URL how the "web" answers it:

    GET /images/NAME       200, the file DIR/images/NAME; Content-Type from its extension
                           (an HTML page saved as .jpg is served as image/jpeg, like a
                           misconfigured host)
    GET /eval/NAME         the same for DIR/eval/NAME (the held-out eval list's images)
    GET /status/CODE/ANY   answers CODE (404, 500, ...) with a short text body
    GET /redirect/PATH     302 Found, Location: /PATH
    GET /slow/PATH         waits `slow_seconds` (default 12 s: beyond img2dataset's 10 s
                           default timeout), then answers as /PATH
    GET /ctype/PATH        answers as /PATH but with Content-Type: text/plain

URLs in a corpus embed the base URL it was generated with (see
`pipelines.sampleweb.corpus`). In tests: `port = free_port()`, generate with
`base_url=f"http://127.0.0.1:{port}"`, then `with CorpusServer(dir, port=port) as server:`.
The server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 8765
DEFAULT_SLOW_SECONDS = 12.0
FOLDERS = ("images", "eval")  # the corpus folders served, each under its own URL path
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], directory: Path, slow_seconds: float, verbose: bool) -> None:
        self.directory = directory
        self.slow_seconds = slow_seconds
        self.verbose = verbose
        self.stopping = threading.Event()  # wakes /slow/ handlers at shutdown
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) is normal here; anything else is reported."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "lipforge-sampleweb/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    def _answer(self, body: bool) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
        content_type = None
        if parts[:1] == ["status"] and len(parts) >= 2:
            code = int(parts[1]) if parts[1].isdigit() else 0
            if not 200 <= code <= 599:
                return self._send(HTTPStatus.BAD_REQUEST, b"status code must be 200-599\n", "text/plain", body)
            return self._send(code, f"status {code} as asked\n".encode(), "text/plain", body)
        if parts[:1] == ["redirect"]:
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/" + "/".join(parts[1:]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if parts[:1] == ["slow"]:
            if self.server.stopping.wait(self.server.slow_seconds):
                return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"shutting down\n", "text/plain", body)
            parts = parts[1:]
        if parts[:1] == ["ctype"]:
            content_type, parts = "text/plain", parts[1:]
        if len(parts) == 2 and parts[0] in FOLDERS and _plain_name(parts[1]):
            path = self.server.directory / parts[0] / parts[1]
            if path.is_file():
                kind = content_type or CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
                return self._send(HTTPStatus.OK, path.read_bytes(), kind, body)
        return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", body)

    def _send(self, code: int, data: bytes, content_type: str, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def _plain_name(name: str) -> bool:
    """A file name inside a served folder (no separators, no dot files, no '..' after URL-decoding)."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (to generate a corpus for it, then serve)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class CorpusServer:
    """The corpus server in a background thread: `with CorpusServer(dir, port) as s: s.base_url`.

    `port=0` picks a free port (read it back from `.port`). `slow_seconds` is how long
    /slow/ URLs wait; tests set it to a few seconds and use a shorter client timeout.
    """

    def __init__(
        self,
        directory: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        verbose: bool = False,
    ) -> None:
        self.directory = Path(directory)
        images = self.directory / "images"
        if not images.is_dir():
            raise ValueError(
                f"{self.directory}: no images/ folder; not a sample-web corpus "
                "(make one with `python -m pipelines sample-web --out DIR`)"
            )
        self.host = host
        self._httpd = _Server((host, port), self.directory, slow_seconds, verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> CorpusServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"corpus-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake waiting /slow/ handlers, release the port."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> CorpusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve-web",
        help="serve a sample web corpus over HTTP on 127.0.0.1",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", help="corpus folder written by `sample-web --out DIR`")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--slow-seconds",
        type=float,
        default=DEFAULT_SLOW_SECONDS,
        help=f"how long /slow/ URLs wait before answering (default {DEFAULT_SLOW_SECONDS:g})",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    with CorpusServer(
        args.dir, port=args.port, host=args.host, slow_seconds=args.slow_seconds, verbose=args.verbose
    ) as server:
        print(f"serving {args.dir} at {server.base_url} (Ctrl-C to stop)", flush=True)
        meta = Path(args.dir) / "corpus.json"
        if meta.is_file():
            expected = json.loads(meta.read_text(encoding="utf-8")).get("base_url")
            if expected and expected.rstrip("/") != server.base_url:
                print(f"note: the corpus URLs point at {expected}, not {server.base_url}", flush=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops it as cleanly as Ctrl-C
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
