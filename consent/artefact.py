"""The consent artefact: one immutable version of a citizen's consent, and its canonical form.

A consent is a chain of versions. Every change (a status transition or a recorded use) makes a
new version whose ``predecessor_hash`` is the SHA-256 of the previous version's canonical
encoding, so a citizen holding any receipt can check that the history they are shown was only
ever appended to.

Canonical encoding: the JSON object of :meth:`ConsentArtefact.to_dict` with sorted keys, no
whitespace, UTF-8 (non-ASCII characters literal), integers only, every absent optional value an
explicit ``null``, timestamps ``YYYY-MM-DDTHH:MM:SSZ``. For these value types it coincides with
RFC 8785 (JCS), so other languages can reproduce digests with an off-the-shelf JCS library.

Three annotations live *outside* the digest (:data:`LIVE_FIELDS`):

* ``ledger_anchor`` says where the ledger event of this very version landed, which is only
  known after the version exists (:meth:`ConsentArtefact.with_anchor`);
* ``use_count`` and ``last_used_at`` are the live usage counters. A use is not a change of the
  citizen's decision, so it makes no new version: the version chain records status changes
  only, while each use is recorded where it is evidence — as its own ledger event and a row of
  the consent's use log, from which the sliding frequency window is counted. A receipt signs
  the counters as they stood when it was issued (:meth:`ConsentArtefact.with_usage`).

Attaching either keeps the version number and the digest, so a chain verifies whatever the
counters say.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import Enum
from itertools import pairwise
from operator import attrgetter
from typing import Any, TypeVar

import msgspec

from consent.errors import ConsentInvalid
from consent.periods import DataLife, Frequency, as_utc, rfc3339

ANY_PROVIDER = "any"
#: Annotations of a version that are not part of its digest (see the module docstring).
LIVE_FIELDS = frozenset({"use_count", "last_used_at", "ledger_anchor"})
CONSENT_BASIS = "consent"
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 1000
MAX_CATEGORIES = 50

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# Shape of a CURP anywhere in a string (RENAPO replaces Ñ by X, but be lenient): an artefact
# travels outward in receipts and ledger events, so a CURP must never be its principal.
_CURP_SHAPE = re.compile(r"[A-ZÑ]{4}\d{6}[HMX][A-ZÑ]{5}[0-9A-Z]\d", re.IGNORECASE)


class Status(str, Enum):
    REQUESTED = "requested"
    ACTIVE = "active"
    PAUSED = "paused"
    REVOKED = "revoked"
    EXPIRED = "expired"
    DENIED = "denied"

    @property
    def is_terminal(self) -> bool:
        """Revoked, expired and denied consents never change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({Status.REVOKED, Status.EXPIRED, Status.DENIED})


class AccessMode(str, Enum):
    VIEW = "view"
    STORE = "store"


class FetchType(str, Enum):
    ONCE = "once"
    PERIODIC = "periodic"


class Actor(str, Enum):
    CITIZEN = "citizen"
    AGENCY = "agency"
    SYSTEM = "system"


_E = TypeVar("_E", bound=Enum)


def _enum(kind: type[_E], value: object, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise ConsentInvalid(f"{name} debe ser uno de: {allowed}.") from None


def _text(value: object, name: str, limit: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ConsentInvalid(f"{name} debe ser un texto no vacío de hasta {limit} caracteres.")
    return value


def _instant(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ConsentInvalid(f"{name} debe ser una fecha y hora con zona horaria.")
    return as_utc(value)


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why the consumer wants the data: a registered ``code`` and the text the citizen reads."""

    code: str
    text: str

    def __post_init__(self) -> None:
        _text(self.code, "purpose.code")
        _text(self.text, "purpose.text", MAX_TEXT_LENGTH)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One status change: what it became, when, who caused it and (optionally) why."""

    status: Status
    at: datetime
    by: Actor
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", _enum(Status, self.status, "history.status"))
        object.__setattr__(self, "at", _instant(self.at, "history.at"))
        object.__setattr__(self, "by", _enum(Actor, self.by, "history.by"))
        if self.reason is not None:
            _text(self.reason, "history.reason", MAX_TEXT_LENGTH)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "at": rfc3339(self.at),
            "by": self.by.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class LedgerAnchor:
    """Where this version's ledger event is: queued (``queue_id``), then sequenced
    (``leaf_index``), then covered by a signed ``checkpoint``."""

    leaf_index: int | None = None
    queue_id: str | None = None
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if self.leaf_index is not None and (
            isinstance(self.leaf_index, bool)
            or not isinstance(self.leaf_index, int)
            or self.leaf_index < 0
        ):
            raise ConsentInvalid("ledger_anchor.leaf_index debe ser un entero no negativo.")
        if self.queue_id is not None:
            _text(self.queue_id, "ledger_anchor.queue_id")
        if self.checkpoint is not None:
            _text(self.checkpoint, "ledger_anchor.checkpoint", 4096)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "queue_id": self.queue_id,
            "checkpoint": self.checkpoint,
        }


#: Terms that are fixed when the consent is created and identical in every later version.
FIXED_TERMS = (
    "consent_id",
    "created_at",
    "data_principal",
    "data_consumer",
    "data_provider",
    "categories",
    "purpose",
    "legal_basis",
    "access_mode",
    "fetch_type",
    "frequency",
    "data_life",
)


@dataclass(frozen=True, slots=True)
class ConsentArtefact:
    """One version of a consent. Construct it through :mod:`consent.machine`; the checks
    here only guarantee that whatever exists is well formed and already normalised
    (UTC whole-second timestamps, categories sorted and unique)."""

    consent_id: str
    version: int
    predecessor_hash: str | None
    created_at: datetime
    data_principal: str
    data_consumer: str
    data_provider: str
    categories: tuple[str, ...]
    purpose: Purpose
    legal_basis: str
    access_mode: AccessMode
    fetch_type: FetchType
    frequency: Frequency
    data_life: DataLife
    valid_from: datetime
    valid_until: datetime
    status: Status
    history: tuple[HistoryEntry, ...]
    use_count: int = 0
    last_used_at: datetime | None = None
    ledger_anchor: LedgerAnchor | None = None

    def __post_init__(self) -> None:
        _text(self.consent_id, "consent_id")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ConsentInvalid("version debe ser un entero.")
        if self.version < 1:
            raise ConsentInvalid("version empieza en 1.")
        if self.version == 1 and self.predecessor_hash is not None:
            raise ConsentInvalid("La versión 1 no tiene predecesora.")
        if self.version > 1 and (
            not isinstance(self.predecessor_hash, str)
            or not _HEX_DIGEST.fullmatch(self.predecessor_hash)
        ):
            raise ConsentInvalid("predecessor_hash debe ser SHA-256 en hexadecimal minúsculo.")
        set_ = object.__setattr__
        set_(self, "created_at", _instant(self.created_at, "created_at"))
        principal = _text(self.data_principal, "data_principal")
        if _CURP_SHAPE.search(principal):
            raise ConsentInvalid("data_principal es el id del ciudadano, nunca su CURP.")
        _text(self.data_consumer, "data_consumer")
        _text(self.data_provider, "data_provider")
        if isinstance(self.categories, str):
            raise ConsentInvalid("categories debe ser una lista de códigos.")
        categories = tuple(sorted({_text(c, "categories[]") for c in self.categories}))
        if not 1 <= len(categories) <= MAX_CATEGORIES:
            raise ConsentInvalid(f"categories debe tener de 1 a {MAX_CATEGORIES} elementos.")
        set_(self, "categories", categories)
        if not isinstance(self.purpose, Purpose):
            raise ConsentInvalid("purpose debe ser {code, text}.")
        _text(self.legal_basis, "legal_basis", MAX_TEXT_LENGTH)
        set_(self, "access_mode", _enum(AccessMode, self.access_mode, "access_mode"))
        set_(self, "fetch_type", _enum(FetchType, self.fetch_type, "fetch_type"))
        if not isinstance(self.frequency, Frequency) or not isinstance(self.data_life, DataLife):
            raise ConsentInvalid("frequency y data_life deben ser {unit, value}.")
        set_(self, "valid_from", _instant(self.valid_from, "valid_from"))
        set_(self, "valid_until", _instant(self.valid_until, "valid_until"))
        if self.valid_from >= self.valid_until:
            raise ConsentInvalid("valid_until debe ser posterior a valid_from.")
        set_(self, "status", _enum(Status, self.status, "status"))
        set_(self, "history", tuple(self.history))
        if not self.history or not all(isinstance(h, HistoryEntry) for h in self.history):
            raise ConsentInvalid("history debe tener al menos un cambio de estado.")
        if self.history[-1].status is not self.status:
            raise ConsentInvalid("El último cambio de history debe dar el estado actual.")
        if any(a.at > b.at for a, b in pairwise(self.history)):
            raise ConsentInvalid("Las fechas de history no pueden retroceder.")
        self._check_uses()
        if self.ledger_anchor is not None and not isinstance(self.ledger_anchor, LedgerAnchor):
            raise ConsentInvalid("ledger_anchor debe ser {leaf_index, queue_id, checkpoint}.")

    def _check_uses(self) -> None:
        last = _checked_usage(self.fetch_type, self.use_count, self.last_used_at)
        object.__setattr__(self, "last_used_at", last)

    # -- derived facts ------------------------------------------------------------------

    @property
    def updated_at(self) -> datetime:
        """The latest instant recorded in this version (its last status change or use)."""
        last = self.history[-1].at
        return max(last, self.last_used_at) if self.last_used_at is not None else last

    def covers_provider(self, provider: str | None) -> bool:
        """``any`` covers every holder; a named holder only itself (``None`` is not a name)."""
        return self.data_provider == ANY_PROVIDER or self.data_provider == provider

    # -- canonical form -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The artefact as plain JSON values (every field, ``ledger_anchor`` included)."""
        return {
            "consent_id": self.consent_id,
            "version": self.version,
            "predecessor_hash": self.predecessor_hash,
            "created_at": rfc3339(self.created_at),
            "data_principal": self.data_principal,
            "data_consumer": self.data_consumer,
            "data_provider": self.data_provider,
            "categories": list(self.categories),
            "purpose": {"code": self.purpose.code, "text": self.purpose.text},
            "legal_basis": self.legal_basis,
            "access_mode": self.access_mode.value,
            "fetch_type": self.fetch_type.value,
            "frequency": {"unit": self.frequency.unit.value, "value": self.frequency.value},
            "data_life": {"unit": self.data_life.unit.value, "value": self.data_life.value},
            "valid_from": rfc3339(self.valid_from),
            "valid_until": rfc3339(self.valid_until),
            "status": self.status.value,
            "history": [entry.to_dict() for entry in self.history],
            "use_count": self.use_count,
            "last_used_at": rfc3339(self.last_used_at) if self.last_used_at else None,
            "ledger_anchor": self.ledger_anchor.to_dict() if self.ledger_anchor else None,
        }

    def canonical_bytes(self) -> bytes:
        """The canonical encoding of the whole artefact: what a receipt signs."""
        return canonical_json(self.to_dict())

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical encoding without :data:`LIVE_FIELDS`: the value the
        next version's ``predecessor_hash`` carries."""
        return digest_of(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConsentArtefact:
        """Parse and validate plain JSON values (storage rows, receipt payloads)."""
        try:
            return msgspec.convert(dict(data), cls)
        except msgspec.ValidationError as exc:
            raise ConsentInvalid(f"El consentimiento no es válido: {exc}") from None

    def with_anchor(self, anchor: LedgerAnchor | None) -> ConsentArtefact:
        """The same version annotated with where its ledger event is (digest unchanged)."""
        return replace(self, ledger_anchor=anchor)

    def with_usage(self, use_count: int, last_used_at: datetime | None) -> ConsentArtefact:
        """The same version with the live usage counters (digest unchanged).

        Only the counters are checked: every release overlays them on an already valid
        version, and re-checking all of it (as ``replace`` would) costs more than the rest of
        the decision."""
        if use_count == self.use_count and last_used_at == self.last_used_at:
            return self
        last = _checked_usage(self.fetch_type, use_count, last_used_at)
        new = object.__new__(ConsentArtefact)
        for name, value in zip(_SLOTS, _read_slots(self), strict=True):
            object.__setattr__(new, name, value)
        object.__setattr__(new, "use_count", use_count)
        object.__setattr__(new, "last_used_at", last)
        return new


_SLOTS = tuple(f.name for f in fields(ConsentArtefact))
_read_slots = attrgetter(*_SLOTS)


def _checked_usage(
    fetch_type: FetchType, use_count: object, last_used_at: object
) -> datetime | None:
    """Counters that fit the consent, with ``last_used_at`` normalised; else ConsentInvalid."""
    if isinstance(use_count, bool) or not isinstance(use_count, int):
        raise ConsentInvalid("use_count debe ser un entero.")
    if use_count < 0 or (fetch_type is FetchType.ONCE and use_count > 1):
        raise ConsentInvalid("use_count fuera de rango.")
    if (last_used_at is None) != (use_count == 0):
        raise ConsentInvalid("last_used_at existe si y solo si use_count > 0.")
    return None if last_used_at is None else _instant(last_used_at, "last_used_at")


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact UTF-8 JSON (JCS-compatible for strings, integers and null)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest_of(artefact_dict: Mapping[str, Any]) -> str:
    """Digest of an artefact given as plain JSON values (e.g. a verified receipt payload)."""
    covered = {k: v for k, v in artefact_dict.items() if k not in LIVE_FIELDS}
    return hashlib.sha256(canonical_json(covered)).hexdigest()


def chain_problems(versions: Sequence[ConsentArtefact]) -> tuple[str, ...]:
    """Everything wrong with a claimed full history ``v1, v2, …`` (empty when it verifies):
    each version links to the digest of the one before, fixed terms never change, history
    is only appended to, and time never runs backwards."""
    problems: list[str] = []
    if not versions:
        return ("empty chain",)
    if versions[0].version != 1 or versions[0].predecessor_hash is not None:
        problems.append("chain does not start at version 1")
    for prev, cur in pairwise(versions):
        where = f"v{cur.version}"
        if cur.consent_id != prev.consent_id:
            problems.append(f"{where}: different consent_id")
        if cur.version != prev.version + 1:
            problems.append(f"{where}: follows v{prev.version}")
        if cur.predecessor_hash != prev.digest():
            problems.append(f"{where}: predecessor_hash is not the digest of v{prev.version}")
        for name in FIXED_TERMS:
            if getattr(cur, name) != getattr(prev, name):
                problems.append(f"{where}: fixed term {name} changed")
        if cur.history[: len(prev.history)] != prev.history:
            problems.append(f"{where}: history was rewritten, not appended to")
        if cur.updated_at < prev.updated_at or cur.use_count < prev.use_count:
            problems.append(f"{where}: goes back in time or in uses")
    return tuple(problems)
