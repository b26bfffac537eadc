"""What goes over the air for a response: JSON or MessagePack, its ETag, and 304s.

One ASGI middleware, placed *inside* response compression (see :mod:`.compression`), so that

- MessagePack request bodies become JSON before the handler reads them;
- JSON responses become MessagePack when the client asks (``Accept``);
- every ``GET`` 200 gets an ETag computed over the uncompressed representation the client
  will decode, and a matching ``If-None-Match`` turns it into a bodiless 304 that never reaches
  the compressor;
- authenticated ``GET``s default to ``Cache-Control: private, no-cache`` (the phone keeps the
  copy but revalidates every time — cheap, thanks to the 304) and all GETs carry
  ``Vary: Accept, Accept-Encoding, Authorization``.

Only ordinary responses (a ``Content-Length`` no bigger than ``max_buffer``) are buffered.
Streams — no ``Content-Length``, or a first chunk with ``more_body`` — pass through as they
come: their headers get ``Vary``/``Cache-Control``, their body is never held or rewritten, and
they get no computed ETag (a tag set by the handler is still honoured, 304 included).

Requests without a body to transcode that are not GETs and don't ask for MessagePack go
straight through without a ``send`` wrapper: the fast path costs one header scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from wallet.lowband import etag as tags
from wallet.lowband.asgi import (
    Event,
    RawHeaders,
    body_limit,
    body_message,
    event,
    header,
    media_type,
    merge_vary,
    read_body,
    replace_request_headers,
    replay,
    response_headers,
    set_header,
    start_message,
    without,
)
from wallet.lowband.negotiation import (
    DEFAULT_MAX_DEPTH,
    JSON,
    MSGPACK,
    MSGPACK_REQUEST_TYPES,
    json_to_msgpack,
    msgpack_to_json,
    prefers_msgpack,
)

GET_VARY = (b"Accept", b"Accept-Encoding", b"Authorization")
_GET_VARY_VALUE = b", ".join(GET_VARY)
_PASS, _BUFFER, _SWALLOW = 0, 1, 2
AUTHENTICATED_CACHE_CONTROL = b"private, no-cache"
#: Representation metadata a 304 must not carry (RFC 9110 §15.4.5); ETag, Cache-Control,
#: Vary, Content-Location, Date and Expires stay.
_NOT_IN_304 = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"content-language",
        b"content-disposition",
        b"content-range",
        b"transfer-encoding",
    }
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class RepresentationConfig:
    """Knobs of :class:`RepresentationMiddleware`."""

    #: Responses bigger than this are streamed through untouched (no computed ETag).
    max_buffer: int = 256 * 1024
    #: Nesting allowed in MessagePack request bodies.
    max_depth: int = DEFAULT_MAX_DEPTH
    #: Route ``opt`` key listing the body media types a route reads (as in ``wallet.web``);
    #: MessagePack is transcoded only for routes that list ``application/msgpack`` there.
    accept_opt_key: str = "accept"
    default_body_types: frozenset[str] = frozenset({"application/json", "application/msgpack"})


def _route_reads_msgpack(scope: Scope, config: RepresentationConfig) -> bool:
    handler = scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    accepted = opt.get(config.accept_opt_key, config.default_body_types)
    return "application/msgpack" in accepted


class RepresentationMiddleware:
    """ASGI middleware: content negotiation + conditional GET (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: RepresentationConfig | None = None) -> None:
        self.app = app
        self.config = config or RepresentationConfig()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        accept = if_none_match = content_type = None
        authenticated = False
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authenticated = True

        if (
            method in _BODY_METHODS
            and media_type(content_type) in MSGPACK_REQUEST_TYPES
            and _route_reads_msgpack(scope, self.config)
        ):
            receive = await self._json_request(scope, receive)

        wants_msgpack = (
            accept is not None
            and b"msgpack" in accept
            and prefers_msgpack(accept.decode("latin-1"))
        )
        conditional = method in {"GET", "HEAD"}
        if not wants_msgpack and not conditional:
            await self.app(scope, receive, send)
            return
        writer = _ResponseWriter(
            send,
            config=self.config,
            wants_msgpack=wants_msgpack,
            conditional=conditional,
            computes_etag=method == "GET",
            if_none_match=if_none_match,
            authenticated=authenticated,
        )
        await self.app(scope, receive, writer.send)

    async def _json_request(self, scope: Scope, receive: Receive) -> Receive:
        body = await read_body(scope, receive, body_limit(scope))
        json_body = msgpack_to_json(body, self.config.max_depth) if body else b""
        headers = without(scope["headers"], frozenset({b"content-type", b"content-length"}))
        headers.append((b"content-type", JSON))
        headers.append((b"content-length", str(len(json_body)).encode()))
        replace_request_headers(scope, headers)
        return replay(json_body, receive)


class _ResponseWriter:
    """The per-request ``send`` wrapper: decides at ``http.response.start`` whether to buffer.

    Written for speed — it runs on every GET: one pass over the response headers (Litestar
    emits lower-case names), no header objects, at most one hash.
    """

    __slots__ = (
        "_chunks",
        "_content_type",
        "_etag",
        "_mode",
        "_size",
        "_start",
        "_transcode",
        "authenticated",
        "computes_etag",
        "conditional",
        "config",
        "if_none_match",
        "next_send",
        "wants_msgpack",
    )

    def __init__(
        self,
        next_send: Send,
        *,
        config: RepresentationConfig,
        wants_msgpack: bool,
        conditional: bool,
        computes_etag: bool,
        if_none_match: bytes | None,
        authenticated: bool,
    ) -> None:
        self.next_send = next_send
        self.config = config
        self.wants_msgpack = wants_msgpack
        self.conditional = conditional
        self.computes_etag = computes_etag
        self.if_none_match = if_none_match
        self.authenticated = authenticated
        self._mode = 0  # _PASS | _BUFFER | _SWALLOW
        self._start: Event | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._content_type = b""
        self._etag: bytes | None = None
        self._transcode = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(event(message))
        elif self._mode and kind == "http.response.body":
            await self._on_body(event(message))
        else:
            await self.next_send(message)

    async def _on_start(self, message: Event) -> None:
        status: int = message["status"]
        conditional = self.conditional and status == 200
        transcode = self.wants_msgpack and 200 <= status < 300 and status != 204
        if not conditional and not transcode:
            await self.next_send(cast(Message, message))
            return
        headers = response_headers(message)
        content_type = length = etag = None
        cache_control = vary = False
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"etag":
                etag = value
            elif name == b"cache-control":
                cache_control = True
            elif name == b"vary":
                vary = True
        transcode = transcode and media_type(content_type) == JSON
        if conditional:
            if vary:
                merge_vary(headers, GET_VARY)
            else:
                headers.append((b"vary", _GET_VARY_VALUE))
            if self.authenticated and not cache_control:
                headers.append((b"cache-control", AUTHENTICATED_CACHE_CONTROL))
        elif transcode:
            merge_vary(headers, (b"Accept",))

        if not transcode and (etag is not None or not self.computes_etag or not conditional):
            # Nothing to rewrite: a handler's own tag is judged from the headers alone.
            if conditional and etag is not None and self._matches(etag):
                self._mode = _SWALLOW
                await self.next_send(start_message(304, without(headers, _NOT_IN_304)))
                return
            await self.next_send(cast(Message, message))
            return
        if length is None or not length.isdigit() or int(length) > self.config.max_buffer:
            await self.next_send(cast(Message, message))  # a stream or a big body: untouched
            return
        self._start = message
        self._mode = _BUFFER
        self._content_type = content_type or b""
        self._etag = etag
        self._transcode = transcode

    async def _on_body(self, message: Event) -> None:
        more_body = message.get("more_body", False)
        if self._mode == _SWALLOW:
            if not more_body:
                await self.next_send(body_message(b""))
            return
        chunk: bytes = message.get("body", b"")
        if more_body:
            self._chunks.append(chunk)
            self._size += len(chunk)
            if self._size > self.config.max_buffer:
                await self._flush_and_pass()
            return
        if self._chunks:
            self._chunks.append(chunk)
            chunk = b"".join(self._chunks)
            self._chunks = []
        await self._finish(chunk)

    async def _flush_and_pass(self) -> None:
        assert self._start is not None
        self._mode = _PASS
        await self.next_send(cast(Message, self._start))
        await self.next_send(body_message(b"".join(self._chunks), more_body=True))
        self._chunks = []

    async def _finish(self, body: bytes) -> None:
        start = self._start
        assert start is not None
        self._mode = _PASS
        headers: RawHeaders = start["headers"]
        content_type = self._content_type
        etag = self._etag
        if self._transcode:
            packed = json_to_msgpack(body)
            if packed is not None:
                body = packed
                content_type = MSGPACK
                set_header(headers, b"content-type", MSGPACK)
                set_header(headers, b"content-length", str(len(body)).encode())
                if etag is not None:
                    etag = tags.derived(etag, b"mp")
                    set_header(headers, b"etag", etag)
        if self.conditional and start["status"] == 200:
            if etag is None and self.computes_etag:
                etag = tags.entity_tag(content_type, body, header(headers, b"content-encoding"))
                headers.append((b"etag", etag))
            if etag is not None and self._matches(etag):
                await self.next_send(start_message(304, without(headers, _NOT_IN_304)))
                await self.next_send(body_message(b""))
                return
        await self.next_send(cast(Message, start))
        await self.next_send(body_message(body))

    def _matches(self, current: bytes) -> bool:
        return self.if_none_match is not None and tags.none_match(self.if_none_match, current)
