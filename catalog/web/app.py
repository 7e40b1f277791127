"""The read-only catalog web app (FastAPI): routes, path-traversal guard, bearer token.

Safe by default: only GET/HEAD routes; every string is escaped (catalog.web.html); a
Content-Security-Policy forbids scripts; `/files/...` serves only regular files inside
the catalog root and any request path with a `..` segment or an encoded slash is refused;
`/models/{run}/files/...` serves only the evaluation files a run's evals.jsonl lists;
sample members are looked up in the offset index by name, never opened as paths, and a
rejected row's thumbnail (`/d/{dataset}/{version}/rejects/{reason}/{key}.jpg`) by reason
and key in the version's rejects sample (catalog.rejects); a bearer
token is required whenever the server binds to a non-loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import mimetypes
import os
import posixpath
import re
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from catalog import rejects, storage
from catalog.errors import UserError
from catalog.models import eval_file
from catalog.rejects import NoRejectsSample
from catalog.store import Catalog
from catalog.web import model_pages, pages, reject_pages

TOKEN_COOKIE = "lipforge_catalog_token"
PER_PAGE = 24
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|2e)", re.IGNORECASE)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class TokenRequired(UserError, ValueError):
    """Binding off loopback without a token."""


def require_token_off_loopback(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if token:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise TokenRequired(
            f"--host {host}: serving off loopback requires a bearer token (--token or $LIPFORGE_CATALOG_TOKEN)"
        )


def unsafe_path(raw_path: str) -> bool:
    """True when a request path could climb out of its route: '..' segments, encoded '/', '\\' or '.'."""
    if _ENCODED_SEPARATOR.search(raw_path) or "\\" in raw_path:
        return True
    return any(seg == ".." for seg in unquote(raw_path).split("/"))


def create_app(root: str, token: str | None = None, index_dir: str | None = None, max_age: float = 2.0) -> FastAPI:
    """The app for one catalog root; the index is re-checked against manifests every max_age s."""
    catalog = Catalog(root, index_dir=index_dir, max_age=max_age)
    app = FastAPI(title="lipforge catalog", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        if unsafe_path(raw.split("?", 1)[0]) or unsafe_path(request.url.path):
            return _with_headers(HTMLResponse(pages.error_page(400, "path refused"), status_code=400))
        if request.method not in ("GET", "HEAD"):
            return _with_headers(HTMLResponse(pages.error_page(405, "the catalog is read-only"), status_code=405))
        if token:
            offered = request.query_params.get("token")
            if offered is not None and hmac.compare_digest(offered, token):
                response = RedirectResponse(request.url.path, status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return _with_headers(response)
            auth = request.headers.get("authorization", "")
            sent = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE, "")
            if not hmac.compare_digest(sent.encode(), token.encode()):
                response = HTMLResponse(pages.error_page(401, "bearer token required"), status_code=401)
                response.headers["WWW-Authenticate"] = "Bearer"
                return _with_headers(response)
        try:
            response = await call_next(request)
        except LookupError as exc:
            response = HTMLResponse(pages.error_page(404, str(exc.args[0] if exc.args else exc)), status_code=404)
        except UserError as exc:  # a bad run name, an unreadable record: the message says which
            response = HTMLResponse(pages.error_page(400, str(exc)), status_code=400)
        return _with_headers(response)

    @app.get("/", response_class=HTMLResponse)
    def index_page() -> str:
        catalog.refresh()
        return pages.dataset_list(catalog)

    @app.get("/d/{dataset}/{version}", response_class=HTMLResponse)
    def version_page(dataset: str, version: int) -> str:
        catalog.refresh()
        return pages.version_page(catalog, dataset, version)

    @app.get("/d/{dataset}/{version}/samples", response_class=HTMLResponse)
    def gallery(dataset: str, version: int, page: int = 0, per_page: int = PER_PAGE) -> str:
        catalog.refresh()
        return pages.gallery_page(catalog, dataset, version, page, min(max(per_page, 1), 200))

    @app.get("/d/{dataset}/{version}/sample/{position}", response_class=HTMLResponse)
    def sample(dataset: str, version: int, position: int) -> str:
        catalog.refresh()
        return pages.sample_page(catalog, catalog.sample(dataset, version, position))

    @app.get("/d/{dataset}/{version}/sample/{position}/{ext}")
    def member(dataset: str, version: int, position: int, ext: str) -> Response:
        catalog.refresh()
        ref = catalog.sample(dataset, version, position)
        data = catalog.read(ref, ext)
        media = mimetypes.guess_type(f"x.{ext}")[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/d/{dataset}/{version}/rejects", response_class=HTMLResponse)
    def rejects_index(dataset: str, version: int) -> Response:
        catalog.refresh()
        try:
            return HTMLResponse(reject_pages.reasons_page(catalog, dataset, version))
        except NoRejectsSample:
            return HTMLResponse(reject_pages.predates_page(dataset, version), status_code=404)

    @app.get("/d/{dataset}/{version}/rejects/{reason}", response_class=HTMLResponse)
    def rejects_of(dataset: str, version: int, reason: str, page: int = 0, per_page: int = reject_pages.PER_PAGE):
        catalog.refresh()
        per_page = min(max(per_page, 1), 500)
        try:
            return HTMLResponse(reject_pages.reason_page(catalog, dataset, version, reason, page, per_page))
        except NoRejectsSample:
            return HTMLResponse(reject_pages.predates_page(dataset, version, reason), status_code=404)

    # thumbnails are looked up by reason and key in the sample table, never opened as paths
    @app.get("/d/{dataset}/{version}/rejects/{reason}/{key}.jpg")
    def reject_thumbnail(dataset: str, version: int, reason: str, key: str) -> Response:
        catalog.refresh()
        catalog.index.manifest(dataset, version)  # an unknown version is a 404 naming it
        return _jpeg(rejects.thumbnail(catalog.root, dataset, version, reason, key))

    @app.get("/d/{dataset}/{version}/rejects/{reason}/{key}/duplicate.jpg")
    def reject_representative(dataset: str, version: int, reason: str, key: str) -> Response:
        catalog.refresh()
        catalog.index.manifest(dataset, version)
        return _jpeg(rejects.thumbnail(catalog.root, dataset, version, reason, key, "duplicate_thumbnail"))

    @app.get("/models", response_class=HTMLResponse)
    def models_page() -> str:
        catalog.refresh()
        return model_pages.models_list(catalog)

    @app.get("/models/{run}", response_class=HTMLResponse)
    def run_page(run: str) -> str:
        catalog.refresh()
        return model_pages.run_page(catalog, run)

    @app.get("/models/{run}/files/{relpath:path}")
    def run_file(run: str, relpath: str) -> Response:
        # only paths recorded in the run's evals.jsonl are served (catalog.models.eval_file)
        clean = posixpath.normpath("/" + relpath).lstrip("/")
        if clean != relpath or not clean.startswith("evals/"):
            return HTMLResponse(pages.error_page(400, "path refused"), status_code=400)
        data = eval_file(catalog.root, run, clean)
        media = mimetypes.guess_type(clean)[0] or "application/octet-stream"
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/files/{path:path}")
    def files(path: str) -> Response:
        clean = posixpath.normpath("/" + path).lstrip("/")
        if clean != path or not clean or clean.split("/")[0].startswith("."):
            return HTMLResponse(pages.error_page(400, "path refused"), status_code=400)
        uri = storage.join(catalog.root, clean)
        if not storage.is_remote(uri) and not os.path.realpath(uri).startswith(os.path.realpath(catalog.root) + os.sep):
            return HTMLResponse(pages.error_page(400, "path refused"), status_code=400)
        fs, inner = storage.filesystem(uri)
        if not fs.isfile(inner):
            raise LookupError(f"no file {clean!r} in the catalog")
        media = mimetypes.guess_type(clean)[0] or "application/octet-stream"
        return Response(storage.read_bytes(uri), media_type=media)

    return app


def _jpeg(data: bytes) -> Response:
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _with_headers(response: Response) -> Response:
    response.headers.update(_HEADERS)
    return response
