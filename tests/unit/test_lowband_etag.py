"""Entity tags and If-None-Match matching (RFC 9110 §8.8.3, §13.1.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.lowband.etag import derived, entity_tag, none_match, opaque

BODY = b'{"open":3}'


def test_tag_is_weak_short_and_depends_on_body_and_media_type() -> None:
    tag = entity_tag(b"application/json", BODY)
    assert tag.startswith(b'W/"') and tag.endswith(b'"')
    assert len(tag) == 20
    assert tag == entity_tag(b"application/json", BODY)
    assert tag != entity_tag(b"application/json", BODY + b" ")
    assert tag != entity_tag(b"application/msgpack", BODY)
    assert tag != entity_tag(b"application/json", BODY, b"br")


@pytest.mark.parametrize(
    ("header", "current", "expected"),
    [
        (b'"a"', b'"a"', True),
        (b'W/"a"', b'"a"', True),  # weak comparison
        (b'"a"', b'W/"a"', True),
        (b'W/"a"', b'W/"a"', True),
        (b'"b"', b'W/"a"', False),
        (b'"x", W/"a", "y"', b'W/"a"', True),  # lists
        (b'"x","y"', b'W/"a"', False),
        (b"*", b'W/"a"', True),
        (b"  *  ", b'"z"', True),
        (b'"a,b"', b'"a,b"', True),  # commas are legal inside tags
        (b'"a,b"', b'"a"', False),
        (b'"ab"', b'"a"', False),  # no prefix matches
        (b"a", b'"a"', False),  # unquoted is not a tag
        (b"", b'"a"', False),
    ],
)
def test_if_none_match(header: bytes, current: bytes, expected: bool) -> None:
    assert none_match(header, current) is expected


@given(st.lists(st.text(alphabet="abcXYZ019-_.,", min_size=0, max_size=8), max_size=5))
def test_a_tag_matches_a_list_exactly_when_listed(listed: list[str]) -> None:
    current = b'W/"abc"'
    header = b", ".join(b'"' + t.encode() + b'"' for t in listed)
    assert none_match(header, current) is ("abc" in listed)


def test_derived_tags_keep_weakness() -> None:
    assert derived(b'"v3"', b"mp") == b'"v3-mp"'
    assert derived(b'W/"v3"', b"mp") == b'W/"v3-mp"'
    assert opaque(b'W/"v3"') == b'"v3"'
