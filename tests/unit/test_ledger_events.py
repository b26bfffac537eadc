"""Ledger events: canonical leaf bytes, pseudonyms, and the guards that keep CURPs out."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import events as ev

SUBJECT = ev.pseudonym(b"0123456789abcdef", "citizen-1")
AT = datetime(2025, 1, 31, 17, 4, 5, 987654, tzinfo=UTC)


def test_leaf_is_canonical_json_with_every_body_field() -> None:
    event = ev.LedgerEvent(
        type=ev.DATA_RELEASED,
        at=AT,
        subject=SUBJECT,
        consumer="imss",
        provider="renapo",
        categories=("acta_nacimiento",),
        purpose="alta_pensión",
        legal_basis=None,
        consent_id="c-1",
        outcome="ok",
        request_id="r-1",
    )
    leaf = event.to_leaf()
    expected = (
        '{"at":"2025-01-31T17:04:05Z","categories":["acta_nacimiento"],"consent_id":"c-1",'
        '"consumer":"imss","legal_basis":null,"outcome":"ok","provider":"renapo",'
        '"purpose":"alta_pensión","request_id":"r-1","subject":"' + SUBJECT + '",'
        '"type":"data.released","v":1}'
    ).encode()
    assert leaf == expected  # sorted keys, no spaces, raw UTF-8, seconds + Z
    assert set(json.loads(leaf)) == {
        "v", "type", "at", "consumer", "provider", "subject", "categories", "purpose",
        "legal_basis", "consent_id", "outcome", "request_id",
    }  # fmt: skip


def test_time_is_normalised_to_utc_seconds() -> None:
    mexico = timezone(timedelta(hours=-6))
    event = ev.LedgerEvent(type=ev.RECORD_PUBLISHED, at=datetime(2025, 1, 1, 6, 0, 0, 5, mexico))
    assert event.at == datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert b'"at":"2025-01-01T12:00:00Z"' in event.to_leaf()
    with pytest.raises(ev.EventError, match="timezone"):
        ev.LedgerEvent(type=ev.RECORD_PUBLISHED, at=datetime(2025, 1, 1))


def test_pseudonym_is_hex_hmac_sha256() -> None:
    secret = b"s" * 32
    assert ev.pseudonym(secret, "abc") == hmac.new(secret, b"abc", hashlib.sha256).hexdigest()
    assert ev.pseudonym(secret, "abc") != ev.pseudonym(b"t" * 32, "abc")
    with pytest.raises(ev.EventError):
        ev.pseudonym(b"short", "abc")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "record.deleted"}, "unknown ledger event type"),
        ({"subject": "GODE561231HDFRRN04"}, "pseudonym"),
        ({"subject": SUBJECT.upper()}, "pseudonym"),
        ({"consumer": "x" * 65}, "consumer"),
        ({"purpose": ""}, "purpose"),
        ({"categories": ("",)}, "categories"),
        ({"extra": {"Bad Key": 1}}, "snake_case"),
        ({"extra": {"ratio": 0.5}}, "integers"),
        ({"extra": {"note": "x" * 129}}, "128"),
    ],
)
def test_bad_events_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"type": ev.RECORD_PUBLISHED, "at": AT, "subject": SUBJECT}
    with pytest.raises(ev.EventError, match=message):
        ev.LedgerEvent(**{**base, **kwargs})  # type: ignore[arg-type]


def test_all_spec_event_types_are_defined() -> None:
    assert {
        "record.published", "record.updated", "record.withdrawn",
        "consent.requested", "consent.granted", "consent.denied", "consent.paused",
        "consent.resumed", "consent.revoked", "consent.expired",
        "data.released", "data.denied", "data.legal_basis",
    } == ev.EVENT_TYPES  # fmt: skip


def test_extra_appears_only_when_present() -> None:
    plain = ev.LedgerEvent(type=ev.RECORD_WITHDRAWN, at=AT)
    assert b"extra" not in plain.to_leaf()
    tagged = ev.LedgerEvent(type=ev.RECORD_WITHDRAWN, at=AT, extra={"version": 2, "b": None})
    assert b'"extra":{"b":null,"version":2}' in tagged.to_leaf()


def test_from_leaf_refuses_non_canonical_bytes() -> None:
    event = ev.LedgerEvent(type=ev.CONSENT_GRANTED, at=AT, subject=SUBJECT, consent_id="c")
    assert ev.LedgerEvent.from_leaf(event.to_leaf()) == event
    spaced = json.dumps(event.body(), sort_keys=True).encode()
    with pytest.raises(ev.EventError, match="canonical"):
        ev.LedgerEvent.from_leaf(spaced)
    with pytest.raises(ev.EventError, match="not a ledger event"):
        ev.LedgerEvent.from_leaf(b"\xff")


text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ev.EventError, match="Unicode"):
        ev.LedgerEvent(type=ev.RECORD_PUBLISHED, at=AT, purpose="\ud800")


@given(
    type_=st.sampled_from(sorted(ev.EVENT_TYPES)),
    seconds=st.integers(0, 4_000_000_000),
    consumer=st.none() | text,
    purpose=st.none() | text,
    categories=st.lists(text, max_size=3),
    extra=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        max_size=3,
    ),
)
def test_leaf_round_trips_and_is_deterministic(
    type_: str,
    seconds: int,
    consumer: str | None,
    purpose: str | None,
    categories: list[str],
    extra: dict[str, ev.ExtraValue],
) -> None:
    try:
        event = ev.LedgerEvent(
            type=type_,
            at=datetime.fromtimestamp(seconds, UTC),
            consumer=consumer,
            purpose=purpose,
            categories=tuple(categories),
            extra=extra,
        )
    except ev.EventError:
        return  # lengths out of bounds: refused up front, fine
    leaf = event.to_leaf()
    assert ev.LedgerEvent.from_leaf(leaf) == event
    assert ev.LedgerEvent.from_leaf(leaf).to_leaf() == leaf


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), _json_values, max_size=8))
def test_the_fast_leaf_encoding_is_the_reference_canonical_json(body: dict[str, object]) -> None:
    """Leaves are hashed into a public log: the fast encoder must produce exactly the bytes of
    the reference definition (sorted keys, compact, UTF-8, non-ASCII literal) for any JSON
    value, control characters and astral planes included; lone surrogates are refused."""
    try:
        reference = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            ev.canonical_leaf(body)
        return
    assert ev.canonical_leaf(body) == reference
