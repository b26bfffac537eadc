"""What goes over the air for a response: JSON or MessagePack, its ETag, and 304s.

One ASGI middleware, placed *inside* response compression (see :mod:`.compression`), so that

- MessagePack request bodies become JSON before the handler reads them;
- JSON responses become MessagePack when the client asks (``Accept``);
- every ``GET`` 200 gets an ETag computed over the uncompressed representation the client
  will decode, and a matching ``If-None-Match`` turns it into a bodiless 304 that never reaches
  the compressor (an empty body is below any ``minimum_size``, which Litestar keeps ≥ 1);
- authenticated ``GET``s default to ``Cache-Control: private, no-cache`` (the phone keeps the
  copy but revalidates every time — cheap, thanks to the 304) and GET answers carry
  ``Vary: Accept, Accept-Encoding, Authorization``.

Only ordinary responses (a ``Content-Length`` no bigger than ``max_buffer``) are buffered.
Streams — no ``Content-Length``, or chunks adding up past ``max_buffer`` — pass through as they
come: their headers get ``Vary``/``Cache-Control``, their body is never held or rewritten, and
they get no computed ETag (a tag set by the handler is still honoured, 304 included).

It runs on every request, so it is written for speed: one scan of the request headers, no
``send`` wrapper at all for non-GET requests that don't ask for MessagePack, one scan of the
response headers, one hash. Litestar's compressor appends ``Accept-Encoding`` to ``Vary``
itself whenever it compresses; knowing the compression settings, we leave that token to it in
exactly those cases, so the header never lists it twice and no extra ``send`` layer is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from wallet.lowband.asgi import (
    AnySend,
    RawHeaders,
    body_limit,
    media_type,
    merge_vary,
    read_body,
    replace_request_headers,
    replay,
    set_header,
    without,
)
from wallet.lowband.etag import derived, entity_tag, none_match
from wallet.lowband.negotiation import (
    DEFAULT_MAX_DEPTH,
    JSON,
    MSGPACK,
    MSGPACK_REQUEST_TYPES,
    json_to_msgpack,
    msgpack_to_json,
    prefers_msgpack,
)

AUTHENTICATED_CACHE_CONTROL = b"private, no-cache"
GET_VARY = (b"Accept", b"Accept-Encoding", b"Authorization")
_VARY_ALL = b"Accept, Accept-Encoding, Authorization"
_VARY_BUT_CODING = b"Accept, Authorization"  # the compressor adds Accept-Encoding
_PASS, _BUFFER, _SWALLOW = 0, 1, 2
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


@dataclass(frozen=True, slots=True)
class CompressionHint:
    """When the compressor outside us will compress: any of ``codings`` in ``Accept-Encoding``
    (Litestar matches substrings) and a body of at least ``minimum_size`` bytes, or a stream."""

    codings: tuple[bytes, ...]
    minimum_size: int


def _route_reads_msgpack(scope: Scope, config: RepresentationConfig) -> bool:
    opt = getattr(scope.get("route_handler"), "opt", None) or {}
    return "application/msgpack" in opt.get(config.accept_opt_key, config.default_body_types)


class RepresentationMiddleware:
    """ASGI middleware: content negotiation + conditional GET (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        config: RepresentationConfig | None = None,
        compression: CompressionHint | None = None,
    ) -> None:
        self.app = app
        self.config = config or RepresentationConfig()
        self.compression = compression

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        # C-speed lookup; a repeated field line keeps its last value (rare for these fields).
        request_headers = dict(scope["headers"])
        accept = request_headers.get(b"accept")
        content_type = request_headers.get(b"content-type")
        if (
            method in _BODY_METHODS
            and content_type is not None
            and media_type(content_type) in MSGPACK_REQUEST_TYPES
            and _route_reads_msgpack(scope, self.config)
        ):
            receive = await self._json_request(scope, receive)

        wants_msgpack = (
            accept is not None
            and b"msgpack" in accept
            and prefers_msgpack(accept.decode("latin-1"))
        )
        if not wants_msgpack and method != "GET" and method != "HEAD":
            await self.app(scope, receive, send)
            return
        hint = self.compression
        min_compressed = 0  # 0: the compressor won't touch this answer
        accept_encoding = request_headers.get(b"accept-encoding")
        if hint is not None and accept_encoding is not None:
            for coding in hint.codings:
                if coding in accept_encoding:
                    min_compressed = hint.minimum_size
                    break
        writer = _ResponseWriter(
            send,
            self.config.max_buffer,
            wants_msgpack,
            method,
            request_headers.get(b"if-none-match"),
            b"authorization" in request_headers,
            min_compressed,
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

    Messages are handled as plain dicts (``Any``): Litestar's TypedDict union of ASGI events
    can't express editing one in place, and casts cost calls on this hot path.
    """

    __slots__ = (
        "_chunks",
        "_coding",
        "_content_type",
        "_etag",
        "_has_vary",
        "_mode",
        "_size",
        "_start",
        "_transcode",
        "authenticated",
        "conditional",
        "if_none_match",
        "is_get",
        "max_buffer",
        "min_compressed",
        "next_send",
        "wants_msgpack",
    )

    def __init__(
        self,
        next_send: Send,
        max_buffer: int,
        wants_msgpack: bool,
        method: str,
        if_none_match: bytes | None,
        authenticated: bool,
        min_compressed: int,
    ) -> None:
        self.next_send: AnySend = next_send
        self.max_buffer = max_buffer
        self.wants_msgpack = wants_msgpack
        self.conditional = method == "GET" or method == "HEAD"
        self.is_get = method == "GET"  # HEAD is judged by a handler's own tag (no body to hash)
        self.if_none_match = if_none_match
        self.authenticated = authenticated
        self.min_compressed = min_compressed
        self._mode = _PASS
        self._start: Any = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._content_type = b""
        self._coding: bytes | None = None
        self._etag: bytes | None = None
        self._has_vary = False
        self._transcode = False

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif self._mode and kind == "http.response.body":
            await self._on_body(message)
        else:
            await self.next_send(message)

    def _compressed(self, size: int | None) -> bool:
        """Will the compressor outside us compress a body of ``size`` (``None``: a stream)?"""
        if not self.min_compressed or not self.is_get:  # HEAD bodies are empty
            return False
        return size is None or size >= self.min_compressed

    async def _on_start(self, message: Any) -> None:
        status: int = message["status"]
        conditional = self.conditional and status == 200
        transcode = self.wants_msgpack and 200 <= status < 300 and status != 204
        if not conditional and not transcode:
            await self.next_send(message)
            return
        headers: RawHeaders = message["headers"]
        if not isinstance(headers, list):
            headers = message["headers"] = [(bytes(k), bytes(v)) for k, v in headers]
        fields = dict(headers)
        content_type = fields.get(b"content-type")
        etag = fields.get(b"etag")
        coding = fields.get(b"content-encoding")
        cache_control = b"cache-control" in fields
        has_vary = b"vary" in fields
        length = fields.get(b"content-length")
        size = int(length) if length is not None and length.isdigit() else None
        if transcode:
            transcode = content_type is not None and media_type(content_type) == JSON
            if transcode and not conditional:
                merge_vary(headers, (b"Accept",))
        if conditional and self.authenticated and not cache_control:
            headers.append((b"cache-control", AUTHENTICATED_CACHE_CONTROL))
        if (
            size is None
            or size > self.max_buffer
            or not (transcode or (conditional and etag is None and self.is_get))
        ):
            # Nothing to rewrite (a handler's own tag is judged from the headers), or a
            # stream / a big body: headers only, the body passes as it comes.
            if conditional:
                if etag is not None and self._matches(etag):
                    self._mode = _SWALLOW
                    self._vary(headers, has_vary, compressed=False)
                    await self._not_modified(headers)
                    return
                self._vary(headers, has_vary, self._compressed(size))
            await self.next_send(message)
            return
        self._start = message
        self._mode = _BUFFER
        self._content_type = content_type or b""
        self._coding = coding
        self._etag = etag
        self._has_vary = has_vary
        self._transcode = transcode

    def _vary(self, headers: RawHeaders, has_vary: bool, compressed: bool) -> None:
        """``Vary`` for a GET answer, leaving ``Accept-Encoding`` to the compressor if it acts."""
        if has_vary:
            merge_vary(headers, (b"Accept", b"Authorization") if compressed else GET_VARY)
        else:
            headers.append((b"vary", _VARY_BUT_CODING if compressed else _VARY_ALL))

    async def _on_body(self, message: Any) -> None:
        more_body = message.get("more_body", False)
        if self._mode == _SWALLOW:
            if not more_body:
                await self.next_send({"type": "http.response.body", "body": b""})
            return
        chunk: bytes = message.get("body", b"")
        if more_body:
            self._chunks.append(chunk)
            self._size += len(chunk)
            if self._size > self.max_buffer:
                await self._flush_and_pass()
            return
        if self._chunks:
            self._chunks.append(chunk)
            chunk = b"".join(self._chunks)
            self._chunks = []
        await self._finish(chunk)

    async def _flush_and_pass(self) -> None:
        start = self._start
        self._mode = _PASS
        if self.conditional and start["status"] == 200:
            self._vary(start["headers"], self._has_vary, self._compressed(None))
        await self.next_send(start)
        body = b"".join(self._chunks)
        self._chunks = []
        await self.next_send({"type": "http.response.body", "body": body, "more_body": True})

    async def _finish(self, body: bytes) -> None:
        start = self._start
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
                    etag = derived(etag, b"mp")
                    set_header(headers, b"etag", etag)
        if self.conditional and start["status"] == 200:
            if etag is None and self.is_get:
                etag = entity_tag(content_type, body, self._coding)
                headers.append((b"etag", etag))
            has_vary = self._has_vary
            if etag is not None and self._matches(etag):
                self._vary(headers, has_vary, compressed=False)
                await self._not_modified(headers)
                await self.next_send({"type": "http.response.body", "body": b""})
                return
            self._vary(headers, has_vary, self._compressed(len(body)))
        await self.next_send(start)
        await self.next_send({"type": "http.response.body", "body": body})

    def _matches(self, current: bytes) -> bool:
        return self.if_none_match is not None and none_match(self.if_none_match, current)

    async def _not_modified(self, headers: RawHeaders) -> None:
        await self.next_send(
            {"type": "http.response.start", "status": 304, "headers": without(headers, _NOT_IN_304)}
        )
