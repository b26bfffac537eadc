"""JSON ⇄ MessagePack: which one the client wants, and safe transcoding both ways.

Handlers only ever speak JSON; the middleware converts at the edge. MessagePack saves a few
bytes on top of brotli and a lot of CPU on low-end phones (no text parsing), but it must carry
*the same data*: a value the app writes as JSON (datetimes already as RFC 3339 strings) comes
back from MessagePack identical.

Problem details stay ``application/problem+json`` even when MessagePack is asked for: RFC 9457
defines only JSON (and XML) forms, error bodies are tiny, and a client must be able to read an
error whatever it negotiated — including errors raised before negotiation ran.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec

from wallet.problems import ApiProblem

MSGPACK = b"application/msgpack"
JSON = b"application/json"
#: Request body types read as MessagePack (the registered name and the common legacy one).
MSGPACK_REQUEST_TYPES = frozenset({MSGPACK, b"application/x-msgpack", b"application/vnd.msgpack"})
DEFAULT_MAX_DEPTH = 32

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode
_msgpack_decode = msgspec.msgpack.Decoder().decode
_msgpack_encode = msgspec.msgpack.Encoder().encode


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


@lru_cache(maxsize=512)
def prefers_msgpack(accept: str) -> bool:
    """Does this ``Accept`` ask for MessagePack at least as much as for JSON?

    MessagePack is never chosen through a wildcard: the client must name it. With equal
    quality we pick MessagePack, the one the client went out of its way to name. Cached
    because a given app sends the same header on every call.
    """
    q_msgpack = 0.0
    named = False
    q_json = {"exact": -1.0, "type": -1.0, "any": -1.0}
    for item in accept.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        q = _quality(params)
        if media in {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}:
            named = True
            q_msgpack = max(q_msgpack, q)
        elif media == "application/json":
            q_json["exact"] = max(q_json["exact"], q)
        elif media == "application/*":
            q_json["type"] = max(q_json["type"], q)
        elif media == "*/*":
            q_json["any"] = max(q_json["any"], q)
    if not named or q_msgpack <= 0.0:
        return False
    json_q = next((q for q in q_json.values() if q >= 0.0), 0.0)
    return q_msgpack >= json_q


def json_to_msgpack(body: bytes) -> bytes | None:
    """The same data as MessagePack, or ``None`` when it can't be said (the JSON is kept).

    Integers beyond 64 bits have no MessagePack form; answering JSON then is honest content
    negotiation (the ``Content-Type`` says which one came back).
    """
    try:
        return _msgpack_encode(_json_decode(body))
    except (msgspec.DecodeError, msgspec.EncodeError, OverflowError, ValueError):
        return None


def invalid_msgpack(detail: str) -> ApiProblem:
    return ApiProblem(400, "invalid-msgpack", "El contenido MessagePack no es válido.", detail)


def _check_json_like(value: Any, max_depth: int) -> None:
    """Refuse what JSON can't say faithfully; iterative, so depth costs no Python stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth > max_depth:
                raise invalid_msgpack(f"Anidación mayor a {max_depth} niveles.")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            if depth > max_depth:
                raise invalid_msgpack(f"Anidación mayor a {max_depth} niveles.")
            for key, child in item.items():
                if type(key) is not str:
                    raise invalid_msgpack("Las llaves de los mapas deben ser texto.")
                stack.append((child, depth + 1))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise invalid_msgpack("Los números deben ser finitos.")
        elif item is None or isinstance(item, str | int | bytes | datetime):
            continue  # bool is an int; bytes → base64 and timestamps → RFC 3339, as msgspec does
        else:
            raise invalid_msgpack("Tipo de extensión MessagePack no admitido.")


def msgpack_to_json(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Transcode a MessagePack request body to the JSON bytes the handler expects.

    Bombs: msgspec checks every declared length against the bytes actually present (a
    5-byte "array of 4 billion items" fails at once), deep nesting is refused past
    ``max_depth`` (and msgspec's own recursion guard catches anything deeper before we walk),
    and the caller has already capped the body size.
    """
    try:
        value = _msgpack_decode(body)
    except msgspec.DecodeError as exc:
        raise invalid_msgpack(str(exc)) from None
    except RecursionError:
        raise invalid_msgpack(f"Anidación mayor a {max_depth} niveles.") from None
    _check_json_like(value, max_depth)
    try:
        return _json_encode(value)
    except (msgspec.EncodeError, OverflowError, ValueError) as exc:
        raise invalid_msgpack(str(exc)) from None
