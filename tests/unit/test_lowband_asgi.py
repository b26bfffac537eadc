"""Raw ASGI helpers: Vary merging, bounded body reads, replayed bodies, idempotency rules."""

from __future__ import annotations

from typing import Any

import pytest

from wallet.lowband.asgi import merge_vary, read_body, replay
from wallet.lowband.idempotency import InvalidKey, parse_key, record_id, storable
from wallet.problems import ApiProblem


@pytest.mark.parametrize(
    ("before", "tokens", "after"),
    [
        ([], (b"Accept",), [(b"vary", b"Accept")]),
        ([(b"vary", b"Origin")], (b"Accept",), [(b"vary", b"Origin, Accept")]),
        ([(b"vary", b"accept")], (b"Accept",), [(b"vary", b"accept")]),
        (
            [(b"vary", b"Accept,Accept-Encoding,Accept-Encoding")],
            (),
            [(b"vary", b"Accept, Accept-Encoding")],
        ),
        ([(b"vary", b"A"), (b"vary", b"B")], (), [(b"vary", b"A, B")]),
        ([(b"vary", b"*")], (b"Accept",), [(b"vary", b"*")]),
    ],
)
def test_merge_vary(
    before: list[tuple[bytes, bytes]], tokens: tuple[bytes, ...], after: list[tuple[bytes, bytes]]
) -> None:
    headers = list(before)
    merge_vary(headers, tokens)
    assert headers == after


def _receiver(chunks: list[bytes]) -> Any:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


async def test_read_body_joins_chunks_and_stops_at_the_limit() -> None:
    scope: Any = {"headers": []}
    assert await read_body(scope, _receiver([b"ab", b"cd", b""]), 10) == b"abcd"
    with pytest.raises(ApiProblem) as raised:
        await read_body(scope, _receiver([b"x" * 6, b"x" * 6]), 10)
    assert raised.value.status == 413


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    scope: Any = {"headers": [(b"content-length", b"11")]}

    async def never() -> Any:
        raise AssertionError("read")

    with pytest.raises(ApiProblem) as raised:
        await read_body(scope, never, 10)
    assert raised.value.status == 413


async def test_replay_gives_the_body_once_then_the_real_receive() -> None:
    receive = replay(b"hola", _receiver([]))
    assert await receive() == {"type": "http.request", "body": b"hola", "more_body": False}
    assert (await receive())["type"] == "http.disconnect"


@pytest.mark.parametrize("raw", [b"", b" ", b"x" * 256, b"\xc3\xb1", b"a b", b'""'])
def test_bad_keys(raw: bytes) -> None:
    with pytest.raises(InvalidKey):
        parse_key(raw)


def test_keys_may_be_quoted_and_scopes_differ() -> None:
    assert parse_key(b'"abc"') == parse_key(b"abc") == "abc"
    assert parse_key(b"k" * 255) == "k" * 255
    assert record_id("citizen:a", "k") != record_id("citizen:b", "k")


@pytest.mark.parametrize(
    ("status", "cache_control", "expected"),
    [
        (200, None, True),
        (201, b"private", True),
        (404, None, True),
        (422, None, True),
        (200, b"no-store", False),
        (400, b"No-Store", False),
        (401, None, False),
        (409, None, False),
        (429, None, False),
        (500, None, False),
        (503, None, False),
    ],
)
def test_what_is_kept_for_replay(status: int, cache_control: bytes | None, expected: bool) -> None:
    assert storable(status, cache_control) is expected
