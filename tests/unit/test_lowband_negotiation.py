"""JSON ⇄ MessagePack: preference parsing, same data both ways, bombs refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.lowband.negotiation import json_to_msgpack, msgpack_to_json, prefers_msgpack
from wallet.problems import ApiProblem

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)
# What handlers return before the app serialises it: datetimes become RFC 3339 strings.
app_values = st.recursive(
    scalars | moments,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/msgpack", True),
        ("application/x-msgpack", True),
        ("application/msgpack, application/json", True),
        ("application/json, application/msgpack", True),  # equal q: the one named on purpose
        ("application/msgpack;q=0.5, application/json", False),
        ("application/json;q=0.5, application/msgpack", True),
        ("application/msgpack;q=0", False),
        ("application/json", False),
        ("*/*", False),  # never through a wildcard
        ("*/*;q=0.1, application/msgpack", True),
        ("application/*, application/msgpack;q=0.9", False),
        ("application/msgpack;q=oops", False),
        ("", False),
    ],
)
def test_prefers_msgpack(accept: str, expected: bool) -> None:
    assert prefers_msgpack(accept) is expected


@given(app_values)
def test_response_transcoding_keeps_the_data(value: Any) -> None:
    as_json = msgspec.json.encode(value)
    packed = json_to_msgpack(as_json)
    assert packed is not None
    assert msgspec.msgpack.decode(packed) == msgspec.json.decode(as_json)


@given(json_like)
def test_request_transcoding_keeps_the_data(value: Any) -> None:
    assert msgspec.json.decode(msgpack_to_json(msgspec.msgpack.encode(value))) == value


@given(moments, st.binary(max_size=20))
def test_request_timestamps_and_binary_read_as_msgspec_reads_json(
    moment: datetime, blob: bytes
) -> None:
    class Body(msgspec.Struct):
        at: datetime
        blob: bytes

    json_body = msgpack_to_json(msgspec.msgpack.encode({"at": moment, "blob": blob}))
    assert msgspec.json.decode(json_body, type=Body) == Body(at=moment, blob=blob)


def test_big_integers_stay_json() -> None:
    assert json_to_msgpack(b'{"n": 123456789012345678901234567890}') is None


@pytest.mark.parametrize(
    "body",
    [
        b"\xdd\xff\xff\xff\xff" + b"\xc0" * 10,  # array32 claiming 4 billion items
        b"\xdf\xff\xff\xff\xff",  # map32 likewise
        b"\xc6\xff\xff\xff\xff",  # bin32 of 4 GB
        b"\x91" * 33 + b"\xc0",  # deeper than 32
        b"\x91" * 100_000 + b"\xc0",  # deeper than msgspec's own recursion guard
        b"\x81\x01\x02",  # {1: 2}: JSON keys are text
        b"\x81\xc0\x02",  # {nil: 2}
        b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
        b"\xd4\x05\x00",  # unknown extension type
        b"\xc1",  # never-used byte
        b"\x92\x01",  # truncated
        b"\x01\x02",  # trailing data
    ],
)
def test_msgpack_bombs_and_non_json_are_refused(body: bytes) -> None:
    with pytest.raises(ApiProblem) as raised:
        msgpack_to_json(body)
    assert raised.value.status == 400
    assert raised.value.slug == "invalid-msgpack"


def test_depth_limit_is_exact() -> None:
    ok = b"\x91" * 32 + b"\xc0"
    assert msgpack_to_json(ok) == b"[" * 32 + b"null" + b"]" * 32
