"""Cross-cutting HTTP behaviour: security headers, media types, client address, access log."""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from wallet.problems import ApiProblem
from wallet.settings import Settings

access_log = logging.getLogger("carpeta.access")

#: Routes accept JSON (and MessagePack) bodies unless they declare ``opt["accept"]``.
DEFAULT_BODY_TYPES = frozenset({"application/json", "application/msgpack"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; manifest-src 'self'; worker-src 'self'"
)


def security_headers_hook(settings: Settings) -> Any:
    """A ``before_send`` hook: every response, errors and 404s included, gets the headers."""
    static = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if settings.uses_tls:
        static.append(("strict-transport-security", "max-age=63072000; includeSubDomains"))

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in static:
            if name not in headers:
                headers[name] = value
        started = scope.get("state", {}).get("carpeta.t0")
        route = scope.get("path_template") or "-"
        access_log.info(
            "request",
            extra={
                "method": scope.get("method"),
                "route": route,
                "status": message["status"],
                "ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            },
        )

    return before_send


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


async def check_request(request: Request[Any, Any, Any]) -> None:
    """``before_request``: start the clock; refuse bodies of a type the route doesn't read."""
    request.scope["state"]["carpeta.t0"] = time.perf_counter()
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    length = request.headers.get("content-length")
    has_body = (length is not None and length.strip() not in {"", "0"}) or (
        "chunked" in request.headers.get("transfer-encoding", "").lower()
    )
    if not has_body:
        return
    accepted = request.route_handler.opt.get("accept", DEFAULT_BODY_TYPES)
    content_type = _media_type(request.headers.get("content-type", ""))
    if content_type not in accepted:
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "El tipo de contenido no es compatible.",
            f"Envía el cuerpo como {' o '.join(sorted(accepted))}.",
        )


def client_address(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The peer address, or the first untrusted hop of X-Forwarded-For behind our proxies."""
    peer = request.client.host if request.client else "unknown"
    if not settings.trusted_proxies or peer not in settings.trusted_proxies:
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in forwarded if h]):
        if hop not in settings.trusted_proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer
