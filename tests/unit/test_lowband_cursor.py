"""Sync cursors: opaque, round-trip, and tamper-evident; limits parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.lowband.cursor import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Cursor,
    InvalidCursor,
    InvalidLimit,
    PageRequest,
    parse_limit,
)

KEY = b"k" * 32
positions = st.integers(min_value=0, max_value=2**63 - 1)


@given(positions, positions, st.text(max_size=40))
def test_round_trip(seq: int, floor: int, scope: str) -> None:
    token = Cursor(seq, floor).encode(KEY, scope)
    assert len(token) <= 64
    assert Cursor.decode(token, KEY, scope) == Cursor(seq, floor)


def test_short_on_the_wire() -> None:
    assert len(Cursor(1234, 0).encode(KEY, "me/records:abc")) <= 24


@given(positions, st.data())
def test_any_change_to_a_token_is_refused(seq: int, data: st.DataObject) -> None:
    token = Cursor(seq).encode(KEY, "s")
    index = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[index]))
    forged = token[:index] + replacement + token[index + 1 :]
    try:
        decoded = Cursor.decode(forged, KEY, "s")
    except InvalidCursor:
        return
    # The last base64 character carries padding bits that decode to the same bytes.
    assert index == len(token) - 1 and decoded == Cursor(seq)


def test_forged_positions_wrong_key_or_scope_are_refused() -> None:
    token = Cursor(7).encode(KEY, "me/records:ana")
    with pytest.raises(InvalidCursor):
        Cursor.decode(token, b"x" * 32, "me/records:ana")
    with pytest.raises(InvalidCursor):
        Cursor.decode(token, KEY, "me/records:beto")
    with pytest.raises(InvalidCursor):
        Cursor.decode(token, KEY, "me/procedures:ana")


@pytest.mark.parametrize(
    "token", ["", "!!!!", "a" * 200, "AAAA", "AQ", "A" * 30, "cursor with spaces", "ñ"]
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidCursor) as raised:
        Cursor.decode(token, KEY)
    assert raised.value.status == 400
    assert raised.value.slug == "invalid-cursor"
    assert raised.value.title == "El cursor de sincronización no es válido."


def test_page_request_parsing() -> None:
    first = PageRequest.parse(None, None, key=KEY, scope="s")
    assert first.after is None and first.limit == DEFAULT_LIMIT
    token = Cursor(5).encode(KEY, "s")
    later = PageRequest.parse(token, "10", key=KEY, scope="s")
    assert later.after == Cursor(5) and later.limit == 10
    assert Cursor.decode(later.cursor(Cursor(9)), KEY, "s") == Cursor(9)


@pytest.mark.parametrize(("raw", "expected"), [(None, 50), ("", 50), ("1", 1), (200, 200)])
def test_limits(raw: int | str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "201", "-1", "1.5", "abc", "٣", "99999", 0, MAX_LIMIT + 1])
def test_bad_limits(raw: int | str) -> None:
    with pytest.raises(InvalidLimit) as raised:
        parse_limit(raw)
    assert raised.value.status == 400 and raised.value.slug == "invalid-limit"
