"""Ledger events: what a leaf says, and the exact bytes that get hashed into the tree.

A leaf is the canonical JSON of a :class:`LedgerEvent`. Its bytes are what citizens' phones,
regulators and outside verifiers hash, so the encoding is fixed once and for all:

* keys sorted, no insignificant whitespace, UTF-8 without ``\\u`` escapes for non-ASCII;
* values are only strings, integers, booleans, ``null`` and lists of strings — no floats — so
  the output is also the RFC 8785 (JCS) canonical form and any language can reproduce it;
* ``at`` is RFC 3339 UTC with seconds precision and a ``Z`` (``2025-01-31T17:04:05Z``);
* all twelve body fields are always present (``null`` when not applicable); ``extra`` appears
  only when non-empty.

Privacy: the subject is a keyed pseudonym (:func:`pseudonym`), never a CURP or citizen id, and
no record content goes into an event. The constructor refuses a subject that is not a
pseudonym, so a CURP cannot slip into the public log by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

__all__ = [
    "CONSENT_DENIED",
    "CONSENT_EXPIRED",
    "CONSENT_GRANTED",
    "CONSENT_PAUSED",
    "CONSENT_REQUESTED",
    "CONSENT_RESUMED",
    "CONSENT_REVOKED",
    "DATA_DENIED",
    "DATA_LEGAL_BASIS",
    "DATA_RELEASED",
    "EVENT_TYPES",
    "EVENT_VERSION",
    "MAX_LEAF_SIZE",
    "RECORD_PUBLISHED",
    "RECORD_UPDATED",
    "RECORD_WITHDRAWN",
    "EventError",
    "ExtraValue",
    "LedgerEvent",
    "format_time",
    "pseudonym",
]

EVENT_VERSION: Final = 1
"""``v`` of every event written by this code; bump only with a documented format change."""

# Agency records (issue 4).
RECORD_PUBLISHED: Final = "record.published"
"""An agency published a record about the subject (category in ``categories``)."""
RECORD_UPDATED: Final = "record.updated"
"""An agency replaced the content of a record it had published."""
RECORD_WITHDRAWN: Final = "record.withdrawn"
"""An agency withdrew a record (the citizen's folder no longer shows it)."""

# Consent lifecycle (the consent artefact's status changes; ``consent_id`` is set).
CONSENT_REQUESTED: Final = "consent.requested"
CONSENT_GRANTED: Final = "consent.granted"
CONSENT_DENIED: Final = "consent.denied"
CONSENT_PAUSED: Final = "consent.paused"
CONSENT_RESUMED: Final = "consent.resumed"
CONSENT_REVOKED: Final = "consent.revoked"
CONSENT_EXPIRED: Final = "consent.expired"

# Data requests between agencies (once-only principle).
DATA_RELEASED: Final = "data.released"
"""Records were released to ``consumer`` under ``consent_id``."""
DATA_DENIED: Final = "data.denied"
"""A data request was refused (``outcome`` carries the reason code)."""
DATA_LEGAL_BASIS: Final = "data.legal_basis"
"""Records were released without consent under the statute in ``legal_basis``."""

EVENT_TYPES: Final = frozenset(
    {
        RECORD_PUBLISHED,
        RECORD_UPDATED,
        RECORD_WITHDRAWN,
        CONSENT_REQUESTED,
        CONSENT_GRANTED,
        CONSENT_DENIED,
        CONSENT_PAUSED,
        CONSENT_RESUMED,
        CONSENT_REVOKED,
        CONSENT_EXPIRED,
        DATA_RELEASED,
        DATA_DENIED,
        DATA_LEGAL_BASIS,
    }
)

# Column widths in ledger.storage; checked here so a bad event fails in the action, clearly.
_LIMITS: Final = {
    "consumer": 64,
    "provider": 64,
    "purpose": 128,
    "legal_basis": 255,
    "consent_id": 64,
    "outcome": 64,
    "request_id": 64,
}
MAX_LEAF_SIZE: Final = 4096
"""Events are small on purpose: phones download them with their proofs."""
_MAX_CATEGORIES: Final = 32
_MAX_EXTRA: Final = 16
_PSEUDONYM_RE: Final = re.compile(r"[0-9a-f]{64}")
_EXTRA_KEY_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")

ExtraValue = str | int | bool | None


class EventError(ValueError):
    """An event that must not enter the log (unknown type, not a pseudonym, too long…)."""


def pseudonym(secret: bytes, citizen_id: str) -> str:
    """The subject of a citizen's events: hex HMAC-SHA256(secret, citizen id).

    Keyed so that nobody without the server secret can test a guessed citizen id against the
    public log; stable so that a citizen's events (and the regulator's per-subject counts) can
    be grouped.
    """
    if len(secret) < 16:
        raise EventError("the pseudonym secret must be at least 16 bytes")
    return hmac.new(secret, citizen_id.encode("utf-8"), hashlib.sha256).hexdigest()


def canonical_leaf(body: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8, non-ASCII literal: byte for byte
    ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
    UTF-8 (a property test holds the two together), produced by msgspec at a fraction of the
    cost. Lone surrogates raise ``UnicodeEncodeError``, as ``str.encode`` would."""
    return msgspec.json.encode(body, order="sorted")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC, seconds precision, ``Z`` suffix — the only time format inside leaves."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat pads the year to four digits, as RFC 3339 requires (strftime's %Y may not).
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _utc_seconds(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise EventError("event time must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEvent:
    """One sharing or consent event, as it is hashed into the log (see module docstring).

    ``at`` is normalised to UTC whole seconds on construction, so the stored columns and the
    leaf always agree.
    """

    type: str
    at: datetime
    subject: str | None = None
    consumer: str | None = None
    provider: str | None = None
    categories: tuple[str, ...] = ()
    purpose: str | None = None
    legal_basis: str | None = None
    consent_id: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    extra: Mapping[str, ExtraValue] = field(default_factory=dict)
    v: int = EVENT_VERSION
    _leaf: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise EventError(f"unknown ledger event type {self.type!r}")
        object.__setattr__(self, "at", _utc_seconds(self.at))
        if self.subject is not None and not _PSEUDONYM_RE.fullmatch(self.subject):
            raise EventError("subject must be a pseudonym (64 lowercase hex), never a CURP or id")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None and not (0 < len(value) <= limit):
                raise EventError(f"{name} must be 1..{limit} characters")
        categories = tuple(self.categories)
        if len(categories) > _MAX_CATEGORIES or not all(
            isinstance(c, str) and 0 < len(c) <= 64 for c in categories
        ):
            raise EventError(f"categories must be at most {_MAX_CATEGORIES} short strings")
        object.__setattr__(self, "categories", categories)
        if len(self.extra) > _MAX_EXTRA:
            raise EventError(f"extra holds at most {_MAX_EXTRA} fields")
        for key, value in self.extra.items():
            if not _EXTRA_KEY_RE.fullmatch(key):
                raise EventError(f"extra key {key!r} must be a short snake_case name")
            if isinstance(value, float) or not isinstance(value, str | int | bool | type(None)):
                raise EventError("extra values must be strings, integers, booleans or null")
            if isinstance(value, str) and len(value) > 128:
                raise EventError("extra strings must be at most 128 characters")
        object.__setattr__(self, "extra", dict(self.extra))
        try:
            leaf = canonical_leaf(self.body())
        except UnicodeEncodeError as exc:  # lone surrogates: not UTF-8, cannot be hashed
            raise EventError("event text must be valid Unicode (UTF-8)") from exc
        object.__setattr__(self, "_leaf", leaf)  # frozen: encoded once, here
        if len(leaf) > MAX_LEAF_SIZE:
            raise EventError(f"an event leaf is at most {MAX_LEAF_SIZE} bytes")

    def body(self) -> dict[str, Any]:
        """The JSON object of the leaf (before encoding)."""
        obj: dict[str, Any] = {
            "v": self.v,
            "type": self.type,
            "at": format_time(self.at),
            "consumer": self.consumer,
            "provider": self.provider,
            "subject": self.subject,
            "categories": list(self.categories),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "consent_id": self.consent_id,
            "outcome": self.outcome,
            "request_id": self.request_id,
        }
        if self.extra:
            obj["extra"] = dict(self.extra)
        return obj

    def to_leaf(self) -> bytes:
        """The canonical bytes hashed into the tree (``SHA-256(0x00 || leaf)``)."""
        return self._leaf

    @classmethod
    def from_leaf(cls, leaf: bytes) -> LedgerEvent:
        """Parse leaf bytes back into an event; refuses anything that is not canonical.

        Used by readers that want typed fields; re-encoding must give the same bytes, which
        also proves the leaf was produced by a conforming writer.
        """
        try:
            obj = json.loads(leaf.decode("utf-8"))
            at = datetime.strptime(obj["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            event = cls(
                v=obj["v"],
                type=obj["type"],
                at=at,
                consumer=obj["consumer"],
                provider=obj["provider"],
                subject=obj["subject"],
                categories=tuple(obj["categories"]),
                purpose=obj["purpose"],
                legal_basis=obj["legal_basis"],
                consent_id=obj["consent_id"],
                outcome=obj["outcome"],
                request_id=obj["request_id"],
                extra=obj.get("extra", {}),
            )
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise EventError("leaf is not a ledger event") from exc
        if event.to_leaf() != leaf:
            raise EventError("leaf is not in canonical form")
        return event
