"""Raw ASGI plumbing shared by the low-bandwidth middleware.

The middleware runs on every request, so it works on the raw ``scope["headers"]`` byte pairs
(scanned, or turned into a plain dict) instead of building Litestar ``Request``/``Headers``
objects: that costs far less than a case-insensitive multidict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from litestar.types import Empty, Message, Receive, Scope
from litestar.utils.scope.state import ScopeState

from wallet.problems import ApiProblem

RawHeaders = list[tuple[bytes, bytes]]
#: Our view of an ASGI event: Litestar's TypedDict union is too narrow to edit in place.
Event = dict[str, Any]
#: A ``send`` we feed plain dicts (it is Litestar's ``Send``, typed loosely on purpose).
AnySend = Callable[[Any], Awaitable[None]]

#: Used when a route declares no body limit of its own (Litestar's own default is 10 MB).
FALLBACK_BODY_LIMIT = 10 * 1024 * 1024


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """First value of ``name`` (lower-case, as ASGI servers deliver names)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def event(message: Message) -> Event:
    return cast(Event, message)


def start_message(status: int, headers: RawHeaders) -> Message:
    return cast(Message, {"type": "http.response.start", "status": status, "headers": headers})


def body_message(body: bytes, more_body: bool = False) -> Message:
    return cast(Message, {"type": "http.response.body", "body": body, "more_body": more_body})


def response_headers(message: Event) -> RawHeaders:
    """The start message's headers as a list we may edit in place (ASGI allows any iterable)."""
    headers = message.get("headers")
    if isinstance(headers, list):
        return headers
    listed: RawHeaders = [(bytes(k).lower(), bytes(v)) for k, v in (headers or ())]
    message["headers"] = listed
    return listed


def set_header(headers: RawHeaders, name: bytes, value: bytes) -> None:
    """Replace every ``name`` header by one with ``value``."""
    headers[:] = [(k, v) for k, v in headers if k.lower() != name]
    headers.append((name, value))


def without(headers: Iterable[tuple[bytes, bytes]], names: frozenset[bytes]) -> RawHeaders:
    return [(k, v) for k, v in headers if k.lower() not in names]


def merge_vary(headers: RawHeaders, tokens: tuple[bytes, ...] = ()) -> None:
    """Add ``tokens`` to ``Vary``, each token once (``*`` wins); also tidies duplicates."""
    present: list[bytes] = []
    fields = 0
    for key, value in headers:
        if key.lower() == b"vary":
            fields += 1
            present.extend(t.strip() for t in value.split(b",") if t.strip())
    if b"*" in present:
        return
    seen: set[bytes] = set()
    merged: list[bytes] = []
    for token in (*present, *tokens):
        if token.lower() not in seen:
            seen.add(token.lower())
            merged.append(token)
    if merged and (merged != present or fields > 1):
        set_header(headers, b"vary", b", ".join(merged))


def media_type(content_type: bytes | None) -> bytes:
    """``application/json; charset=utf-8`` → ``application/json``."""
    if not content_type:
        return b""
    return content_type.split(b";", 1)[0].strip().lower()


def body_limit(scope: Scope) -> int:
    """The route's ``request_max_body_size`` (``None`` there means no limit of its own)."""
    handler = scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    if resolve is None:
        return FALLBACK_BODY_LIMIT
    limit = resolve()
    return FALLBACK_BODY_LIMIT if limit is None else int(limit)


def too_large() -> ApiProblem:
    return ApiProblem(413, "payload-too-large", "El contenido enviado es demasiado grande.")


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing (413) as soon as it passes ``limit`` bytes.

    The declared ``Content-Length`` is checked first so a liar is refused before we read.
    """
    declared = header(scope["headers"], b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large()
        except ValueError:
            raise ApiProblem(400, "bad-request", "La solicitud no es válida.") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ApiProblem(400, "bad-request", "La solicitud no es válida.", "Conexión cerrada.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large()
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one (disconnects)."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def replace_request_headers(scope: Scope, headers: RawHeaders) -> None:
    """Swap the request headers, dropping what Litestar cached from the old ones."""
    scope["headers"] = headers
    state = ScopeState.from_scope(scope)
    state.headers = Empty
    state.content_type = Empty
