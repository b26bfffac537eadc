"""Opaque, tamper-evident sync cursors and the ``?since=&limit=`` parameters that carry them.

A cursor is ``base64url(version ‖ msgpack[seq, floor] ‖ HMAC-SHA256(...)[:12])`` — about 24
characters. The MAC (keyed with a server secret and bound to a *scope*, e.g. the collection
and owner) means a client can neither invent a position (``seq`` past changes it never
received) nor reuse one cursor against another collection; what it says is still only "where
you were", so nothing secret is inside. The version byte lets the format change later: old
cursors then fail as ``invalid-cursor`` and the client resyncs from scratch.

``floor`` is a bandwidth saver for a first full sync: tombstones with ``change_seq <= floor``
were deletions that happened before the client ever synced, so it never had those rows and
needn't hear about them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from wallet.problems import ApiProblem

VERSION = 1
TAG_BYTES = 12
MAX_TOKEN_CHARS = 96
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_CONTEXT = b"carpeta.sync-cursor\x00"

NonNegative = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class InvalidCursor(ApiProblem):
    """400 ``invalid-cursor``: the client should drop its local copy and sync without ``since``."""

    def __init__(self) -> None:
        super().__init__(
            400,
            "invalid-cursor",
            "El cursor de sincronización no es válido.",
            "Vuelve a sincronizar desde el principio, sin el parámetro «since».",
        )


class InvalidLimit(ApiProblem):
    def __init__(self) -> None:
        super().__init__(
            400,
            "invalid-limit",
            "El límite de resultados no es válido.",
            f"Usa un número entero entre 1 y {MAX_LIMIT}.",
        )


class _Fields(msgspec.Struct, array_like=True, frozen=True):
    seq: NonNegative
    floor: NonNegative = 0


_encode_fields = msgspec.msgpack.Encoder().encode
_decode_fields = msgspec.msgpack.Decoder(_Fields).decode


def _tag(key: bytes, scope: str, payload: bytes) -> bytes:
    mac = hmac.new(key, _CONTEXT + scope.encode() + b"\x00" + payload, hashlib.sha256)
    return mac.digest()[:TAG_BYTES]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in one owner's change stream: everything with ``change_seq <= seq`` is known."""

    seq: int = 0
    floor: int = 0

    def encode(self, key: bytes, scope: str = "") -> str:
        payload = bytes([VERSION]) + _encode_fields(_Fields(self.seq, self.floor))
        token = base64.urlsafe_b64encode(payload + _tag(key, scope, payload))
        return token.rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str, key: bytes, scope: str = "") -> Cursor:
        """The cursor, or :class:`InvalidCursor` for anything malformed, forged or stale."""
        if not 0 < len(token) <= MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise InvalidCursor()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor() from None
        payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if len(payload) < 2 or not hmac.compare_digest(tag, _tag(key, scope, payload)):
            raise InvalidCursor()
        if payload[0] != VERSION:
            raise InvalidCursor()
        try:
            fields = _decode_fields(payload[1:])
        except msgspec.DecodeError:
            raise InvalidCursor() from None
        return cls(seq=fields.seq, floor=fields.floor)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Parsed ``?since=<cursor>&limit=``; ``after`` is ``None`` for a full (first) sync.

    ``key`` and ``scope`` travel along so the page's ``next_cursor`` is signed the same way.
    Scope a cursor to what the query reads, e.g. ``f"me/records:{citizen_id}"``.
    """

    after: Cursor | None
    limit: int
    key: bytes = field(repr=False)
    scope: str = ""

    @classmethod
    def parse(
        cls,
        since: str | None,
        limit: int | str | None,
        *,
        key: bytes,
        scope: str = "",
    ) -> PageRequest:
        return cls(
            after=Cursor.decode(since, key, scope) if since else None,
            limit=parse_limit(limit),
            key=key,
            scope=scope,
        )

    def cursor(self, position: Cursor) -> str:
        return position.encode(self.key, self.scope)


def parse_limit(limit: int | str | None) -> int:
    """``None``/empty → 50; an integer in 1..200 → itself; anything else → 400 ``invalid-limit``."""
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    if isinstance(limit, str):
        if not limit.isascii() or not limit.isdigit() or len(limit) > 4:
            raise InvalidLimit()
        limit = int(limit)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidLimit()
    return limit
