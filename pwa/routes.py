"""The routes serving the PWA: ``/``, ``/sw.js``, ``/manifest.webmanifest``, ``/static/…``.

The app composing this package mounts :func:`pwa_route_handlers` and, so that compressed
bodies are not compressed twice, gives its ``CompressionConfig`` the
``exclude_opt_key=PRECOMPRESSED_OPT``. Without that exclusion these routes still work: they
send the identity body and let the app's compressor do its (cheaper, per-request) job.
"""

from __future__ import annotations

import functools
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from pwa.assets import (
    IMMUTABLE,
    MANIFEST,
    SERVICE_WORKER,
    STATIC_PREFIX,
    Asset,
    AssetTable,
    build,
)

#: Route ``opt`` key marking responses that carry their own ``Content-Encoding``.
PRECOMPRESSED_OPT = "pwa_precompressed"
_OPT = {PRECOMPRESSED_OPT: True}
_PREFERENCE = ("br", "gzip")


@functools.cache
def asset_table() -> AssetTable:
    """The served files, built on first use and kept for the life of the process."""
    return build()


def prepare_assets() -> None:
    """Build the table now (an ``on_startup`` hook): errors surface at start, not on a phone."""
    asset_table()


def _accepted(header: str) -> set[str]:
    accepted: set[str] = set()
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        token = token.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if token and quality > 0:
            accepted.add(token)
    return accepted


def choose_coding(accept_encoding: str, asset: Asset) -> str | None:
    """The best precompressed coding the client takes (``br`` before ``gzip``), if any."""
    accepted = _accepted(accept_encoding)
    for coding in _PREFERENCE:
        if coding in asset.encoded and (coding in accepted or "*" in accepted):
            return coding
    return None


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags


def _precompression_allowed(request: Request[Any, Any, Any]) -> bool:
    config = request.app.compression_config
    return config is None or config.exclude_opt_key == PRECOMPRESSED_OPT


def serve(request: Request[Any, Any, Any], asset: Asset) -> Response[bytes]:
    """The asset in the best coding, its validators and caching; 304 when the copy is good."""
    coding = None
    if _precompression_allowed(request):
        coding = choose_coding(request.headers.get("accept-encoding", ""), asset)
    headers = {"Cache-Control": asset.cache_control, "Vary": "Accept-Encoding"}
    if asset.cache_control != IMMUTABLE:
        # Immutable files are never revalidated; the others answer If-None-Match with a 304.
        etag = headers["ETag"] = asset.etag(coding)
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=304, headers=headers)
    if coding:
        headers["Content-Encoding"] = coding
    body = asset.encoded[coding] if coding else asset.body
    return Response(body, media_type=asset.media_type, headers=headers)


def _not_found() -> Response[bytes]:
    return Response(
        b"Not found",
        status_code=404,
        media_type="text/plain",
        headers={"Cache-Control": "no-store"},
    )


@get("/", include_in_schema=False, opt=_OPT, sync_to_thread=False)
def app_shell(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The app shell: a small page naming the hashed stylesheet and modules."""
    return serve(request, asset_table().by_path["/"])


@get("/" + SERVICE_WORKER, include_in_schema=False, opt=_OPT, sync_to_thread=False)
def service_worker(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Root scope, stable URL, revalidated on every update check (``no-cache`` + ETag)."""
    return serve(request, asset_table().by_path["/" + SERVICE_WORKER])


@get("/" + MANIFEST, include_in_schema=False, opt=_OPT, sync_to_thread=False)
def web_manifest(request: Request[Any, Any, Any]) -> Response[bytes]:
    return serve(request, asset_table().by_path["/" + MANIFEST])


@get(STATIC_PREFIX + "{name:str}", include_in_schema=False, opt=_OPT, sync_to_thread=False)
def static_file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """A hashed file; an unknown or outdated name is a plain 404 (never the shell)."""
    asset = asset_table().get(STATIC_PREFIX + name)
    return _not_found() if asset is None else serve(request, asset)


def pwa_route_handlers() -> list[ControllerRouterHandler]:
    """Everything to mount on the app, at the root path."""
    return [app_shell, service_worker, web_manifest, static_file]
