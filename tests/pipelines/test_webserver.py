"""The corpus web server, over real HTTP on 127.0.0.1: every endpoint kind, and a full fetch of a
small corpus whose outcomes must agree with its truth table."""

from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.sampleweb import generate
from pipelines.webserver import CorpusServer, free_port

SLOW_SECONDS = 3.0
CLIENT_TIMEOUT = 1.0
FAILING = ("status_404", "status_500", "slow")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("web")
    port = free_port()
    generate(out, 120, seed=11, base_url=f"http://127.0.0.1:{port}", n_eval=3)
    urls = pq.read_table(out / "urls.parquet").to_pylist()
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    rows = [{**t, "caption": u["caption"]} for u, t in zip(urls, truth)]
    with CorpusServer(out, port=port, slow_seconds=SLOW_SECONDS) as server:
        yield server, out, rows


def _row(rows: list[dict], category: str) -> dict:
    return next(r for r in rows if r["category"] == category)


def _get(url: str, timeout: float = 5.0) -> tuple[int, str, bytes, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.headers["Content-Type"], resp.read(), resp.url


def _file(out: Path, url: str) -> bytes:
    return (out / "images" / url.rsplit("/", 1)[1]).read_bytes()


def test_binds_localhost_on_the_asked_port(served) -> None:
    server, _, rows = served
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert rows[0]["url"].startswith(server.base_url + "/")


def test_images_are_served_with_their_type(served) -> None:
    _, out, rows = served
    for category, ctype, fmt in (
        ("clean", "image/jpeg", "JPEG"),
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("gif", "image/gif", "GIF"),
    ):
        r = _row(rows, category)
        status, got_type, body, _ = _get(r["url"])
        assert (status, got_type) == (200, ctype)
        assert body == _file(out, r["url"])
        assert Image.open(io.BytesIO(body)).format == fmt


@pytest.mark.parametrize("category,code", [("status_404", 404), ("status_500", 500)])
def test_error_statuses(served, category: str, code: int) -> None:
    _, _, rows = served
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(_row(rows, category)["url"])
    assert err.value.code == code


def test_redirect_is_followed_to_the_image(served) -> None:
    server, out, rows = served
    r = _row(rows, "redirect")
    assert "/redirect/images/" in r["url"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", r["url"][len(server.base_url) :])
    resp = conn.getresponse()
    assert resp.status == 302 and resp.getheader("Location") == "/images/" + r["url"].rsplit("/", 1)[1]
    conn.close()
    status, ctype, body, final = _get(r["url"])
    assert (status, ctype) == (200, "image/jpeg")
    assert final == server.base_url + "/images/" + r["url"].rsplit("/", 1)[1]
    assert body == _file(out, r["url"])


def test_slow_endpoint_outlasts_a_client_timeout(served) -> None:
    _, _, rows = served
    start = time.perf_counter()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        _get(_row(rows, "slow")["url"], timeout=CLIENT_TIMEOUT)
    assert time.perf_counter() - start < SLOW_SECONDS


def test_slow_endpoint_answers_a_patient_client(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"\xff\xd8 not really")
    with CorpusServer(tmp_path, slow_seconds=0.3) as server:
        start = time.perf_counter()
        status, ctype, body, _ = _get(server.base_url + "/slow/images/a.jpg")
        assert time.perf_counter() - start >= 0.3
        assert (status, ctype, body) == (200, "image/jpeg", b"\xff\xd8 not really")


def test_wrong_content_type_still_carries_the_jpeg(served) -> None:
    _, out, rows = served
    r = _row(rows, "wrong_content_type")
    status, ctype, body, _ = _get(r["url"])
    assert (status, ctype) == (200, "text/plain")
    assert body == _file(out, r["url"]) and Image.open(io.BytesIO(body)).format == "JPEG"


def test_html_page_is_served_as_jpeg(served) -> None:
    _, _, rows = served
    status, ctype, body, _ = _get(_row(rows, "html_as_image")["url"])
    assert (status, ctype) == (200, "image/jpeg") and body.startswith(b"<!DOCTYPE html>")


def test_eval_images_are_served_from_their_folder(served) -> None:
    server, out, _ = served
    urls = pq.read_table(out / "eval.parquet").column("url").to_pylist()
    assert urls == [f"{server.base_url}/eval/e{i:06d}.jpg" for i in range(3)]
    for url in urls:
        status, kind, data, _ = _get(url)
        assert (status, kind) == (200, "image/jpeg") and data == (out / "eval" / url.rsplit("/", 1)[1]).read_bytes()
    for path in ("/eval/nope.jpg", "/eval/..%2Fcorpus.json", "/eval/", "/eval/000001.jpg"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", path)
        assert conn.getresponse().status == 404, path
        conn.close()


def test_head_and_unknown_paths(served) -> None:
    server, _, rows = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("HEAD", _row(rows, "clean")["url"][len(server.base_url) :])
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) > 1000 and resp.read() == b""
    conn.close()
    for path in ("/images/nope.jpg", "/images/..%2Fcorpus.json", "/corpus.json", "/images/", "/status/abc/x.jpg"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status in (404, 400), path
        assert b"lipforge" not in resp.read()
        conn.close()


def test_every_row_fetches_as_its_category_says(served) -> None:
    """URLs with a failing server behaviour fail; every other URL answers 200 with the file's bytes."""
    _, out, rows = served

    def fetch(url: str) -> int | str:
        # a short timeout only where the server is meant to stall: a loaded test machine
        # must not turn an ordinary answer into a timeout
        try:
            return _get(url, timeout=CLIENT_TIMEOUT if "/slow/" in url else 30)[0]
        except urllib.error.HTTPError as err:
            return err.code
        except (TimeoutError, urllib.error.URLError):
            return "timeout"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(fetch, [r["url"] for r in rows]))
    for r, outcome in zip(rows, outcomes):
        parts = r["category"].split("+")
        expected = {"status_404": 404, "status_500": 500, "slow": "timeout"}
        failing = [expected[p] for p in parts if p in expected]
        assert outcome == (failing[0] if failing else 200), (r["category"], outcome)
        if r["fate"] == "download_failed":
            assert failing


def test_close_releases_the_port_and_wakes_slow_requests(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    server = CorpusServer(tmp_path, slow_seconds=30).start()
    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/slow/images/x.jpg")
    time.sleep(0.2)
    start = time.perf_counter()
    server.close()
    assert time.perf_counter() - start < 2
    conn.close()
    with CorpusServer(tmp_path, port=port) as again:  # the port is free again
        assert again.port == port


def test_not_a_corpus_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no images/ folder"):
        CorpusServer(tmp_path / "missing")


def test_serve_web_cli_serves_until_terminated(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"\x89PNG fake")
    port = free_port()
    script = (
        "import argparse, sys; from pipelines import webserver; p = argparse.ArgumentParser(); "
        "webserver.add_parser(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "serve-web", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        assert _get(f"http://127.0.0.1:{port}/images/a.png")[1:3] == ("image/png", b"\x89PNG fake")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
