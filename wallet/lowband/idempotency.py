"""``Idempotency-Key``: a retried write replays its first answer instead of acting twice.

Phones on 2G lose answers, not only requests: the PWA queues consent actions offline and
resends them with the same key until one answer arrives. For POST, PUT, PATCH and DELETE
carrying the header:

- same principal + same key + same method, path, query and body, finished → the stored
  answer again (status, body, ``Content-Type``, ``Location``, ``ETag``) with
  ``Idempotent-Replayed: true``, for 24 h after it was produced;
- same key, different request → 422 ``idempotency-key-reused``;
- same key while the first is still running → 409 ``idempotency-key-in-flight``;
- keys are scoped per principal (citizen id or OAuth client id from the verified token, or
  the client address for anonymous calls), so nobody can read another's replays; a request
  whose token doesn't verify is passed through unrecorded — its route refuses it anyway;
- answers that a retry could change are not stored, so the retry runs again: 5xx, and
  401/403/408/409/423/425/429 (sign in again, step up, back off…); nor are streamed answers
  or ones bigger than ``max_stored_body``;
- answers marked ``Cache-Control: no-store`` are never written to the table: that is how
  token responses (RFC 6749 §5.1) say they hold secrets — refresh tokens must only ever be
  stored hashed. Problem details carry ``no-store`` too, so refusals are re-evaluated on retry
  (they have no side effects: the handler's transaction rolled back);
- a route can opt out entirely with ``opt={"idempotency": False}``.

Requests without the header cost one scan of the header list and no database work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wallet.lowband.asgi import (
    Event,
    body_limit,
    body_message,
    event,
    header,
    read_body,
    replay,
    response_headers,
    start_message,
)
from wallet.lowband.replays import CLAIMED, ReplayStore, StoredResponse
from wallet.problems import ApiProblem

log = logging.getLogger("carpeta.idempotency")

MAX_KEY_LENGTH = 255
#: Route ``opt`` key: ``False`` turns idempotency off for that route.
OPT_KEY = "idempotency"
REPLAYED_HEADER = (b"idempotent-replayed", b"true")
#: Statuses a retry may legitimately change; never replayed.
NOT_STORED = frozenset({401, 403, 408, 409, 423, 425, 429})
#: Response headers kept for replays.
KEPT_HEADERS = frozenset({"content-type", "location", "etag"})

Principal = Callable[[Request[Any, Any, Any]], str | None]
SessionsGetter = Callable[[Scope], async_sessionmaker[AsyncSession]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    """How to reach the database, who is asking, and what time it is."""

    #: The app's session factory, looked up per request (e.g. from ``scope["app"].state``).
    sessions: SessionsGetter
    #: Who is asking: ``None`` skips idempotency (an unverifiable token). Must not read the body.
    principal: Principal
    now: Callable[[], datetime] = _utcnow
    ttl: timedelta = timedelta(hours=24)
    #: How long an in-flight claim blocks duplicates if its process dies (> request timeout).
    lease: timedelta = timedelta(minutes=2)
    max_stored_body: int = 256 * 1024
    methods: frozenset[str] = field(default=frozenset({"POST", "PUT", "PATCH", "DELETE"}))


class InvalidKey(ApiProblem):
    def __init__(self) -> None:
        super().__init__(
            400,
            "idempotency-key-invalid",
            "La clave de idempotencia no es válida.",
            f"Usa de 1 a {MAX_KEY_LENGTH} caracteres ASCII visibles, por ejemplo un UUID.",
        )


def parse_key(raw: bytes) -> str:
    """The key from the header: a token or an RFC 8941 string (``"…"``), 1–255 visible chars."""
    value = raw.strip()
    if len(value) >= 2 and value[:1] == b'"' and value[-1:] == b'"':
        value = value[1:-1]
    if not 0 < len(value) <= MAX_KEY_LENGTH or any(b < 0x21 or b > 0x7E for b in value):
        raise InvalidKey()
    return value.decode("ascii")


def record_id(principal: str, key: str) -> str:
    return hashlib.sha256(f"{principal}\x00{key}".encode()).hexdigest()


def fingerprint(method: str, scope: Scope, body: bytes) -> str:
    """What makes two requests "the same": method, path, query string and body bytes."""
    digest = hashlib.sha256()
    for part in (
        method.encode(),
        scope["path"].encode("utf-8", "surrogateescape"),
        scope.get("query_string", b""),
    ):
        digest.update(part)
        digest.update(b"\x00")
    digest.update(body)
    return digest.hexdigest()


def storable(status: int, cache_control: bytes | None) -> bool:
    """May this answer be replayed? See the module docstring for the why of each rule."""
    if status >= 500 or status in NOT_STORED:
        return False
    return cache_control is None or b"no-store" not in cache_control.lower()


def _route_allows(scope: Scope) -> bool:
    opt = getattr(scope.get("route_handler"), "opt", None) or {}
    return opt.get(OPT_KEY, True) is not False


class IdempotencyMiddleware:
    """ASGI middleware implementing the module's rules (place it inside compression)."""

    def __init__(self, app: ASGIApp, config: IdempotencyConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in self.config.methods:
            await self.app(scope, receive, send)
            return
        raw_key = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                raw_key = value
                break
        if raw_key is None or not _route_allows(scope):
            await self.app(scope, receive, send)
            return
        key = parse_key(raw_key)
        principal = self.config.principal(Request(scope, receive))
        if principal is None:
            await self.app(scope, receive, send)
            return
        body = await read_body(scope, receive, body_limit(scope))
        record = record_id(principal, key)
        store = ReplayStore(
            self.config.sessions(scope),
            now=self.config.now,
            ttl=self.config.ttl,
            lease=self.config.lease,
        )
        outcome = await store.claim(record, fingerprint(scope["method"], scope, body))
        if outcome is not CLAIMED:
            assert isinstance(outcome, StoredResponse)
            await _replay(send, outcome)
            return
        recorder = _Recorder(send, store, record, self.config.max_stored_body)
        try:
            await self.app(scope, replay(body, receive), recorder.send)
        except BaseException:
            if not recorder.settled:
                await _release_quietly(store, record)
            raise
        if not recorder.settled:
            await _release_quietly(store, record)


async def _release_quietly(store: ReplayStore, record: str) -> None:
    """Best effort (even while cancelled): a leftover claim only blocks until its lease ends."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(store.release(record))


async def _replay(send: Send, stored: StoredResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    headers.append(REPLAYED_HEADER)
    await send(start_message(stored.status, headers))
    await send(body_message(stored.body))


class _Recorder:
    """Holds the start message until the body is complete, stores it, then sends both.

    Storing *before* the client sees the answer closes the window where a quick retry
    would still find the key in flight.
    """

    __slots__ = ("_start", "limit", "next_send", "record", "settled", "store")

    def __init__(self, next_send: Send, store: ReplayStore, record: str, limit: int) -> None:
        self.next_send = next_send
        self.store = store
        self.record = record
        self.limit = limit
        self.settled = False
        self._start: Event | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start = event(message)
            return
        if kind != "http.response.body" or self._start is None:
            await self.next_send(message)
            return
        start, self._start = self._start, None
        body_event = event(message)
        if body_event.get("more_body", False):
            await self._settle(None)  # a stream: not replayable, a retry runs again
        else:
            await self._settle((start, body_event.get("body", b"")))
        await self.next_send(cast(Message, start))
        await self.next_send(message)

    async def _settle(self, answer: tuple[Event, bytes] | None) -> None:
        self.settled = True
        if answer is not None:
            start, body = answer
            status: int = start["status"]
            headers = response_headers(start)
            if storable(status, header(headers, b"cache-control")) and len(body) <= self.limit:
                kept = [
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in headers
                    if k.decode("latin-1").lower() in KEPT_HEADERS
                ]
                try:
                    await self.store.complete(self.record, status, kept, body)
                    return
                except Exception:
                    log.exception("could not store an idempotent response")
        await _release_quietly(self.store, self.record)
