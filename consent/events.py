"""Domain events: what happened to a consent, as facts the ledger records.

Transitions return one event alongside the new artefact version (the pure, return-value form of
the "aggregate emits events" pattern): the caller stores both in one transaction, so there is
no action without its event and no event without its action. Events carry the citizen id as
``principal``; the ledger replaces it with its pseudonym before anything leaves the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from consent.artefact import Actor, ConsentArtefact
from consent.periods import rfc3339


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentEvent:
    type: ClassVar[str] = "consent_event"

    consent_id: str
    version: int
    consumer: str
    provider: str
    principal: str
    categories: tuple[str, ...]
    purpose: str
    legal_basis: str
    at: datetime
    by: Actor
    reason: str | None = None

    @classmethod
    def of(cls, artefact: ConsentArtefact) -> Self:
        """The event describing how ``artefact`` (a fresh version) came to be."""
        entry = artefact.history[-1]
        return cls(
            consent_id=artefact.consent_id,
            version=artefact.version,
            consumer=artefact.data_consumer,
            provider=artefact.data_provider,
            principal=artefact.data_principal,
            categories=artefact.categories,
            purpose=artefact.purpose.code,
            legal_basis=artefact.legal_basis,
            at=entry.at,
            by=entry.by,
            reason=entry.reason,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, ``type`` first; ``principal`` is still the citizen id."""
        return {
            "type": self.type,
            "consent_id": self.consent_id,
            "version": self.version,
            "consumer": self.consumer,
            "provider": self.provider,
            "principal": self.principal,
            "categories": list(self.categories),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "at": rfc3339(self.at),
            "by": self.by.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRequested(ConsentEvent):
    type: ClassVar[str] = "consent_requested"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentGranted(ConsentEvent):
    type: ClassVar[str] = "consent_granted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentDenied(ConsentEvent):
    type: ClassVar[str] = "consent_denied"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentPaused(ConsentEvent):
    type: ClassVar[str] = "consent_paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentResumed(ConsentEvent):
    type: ClassVar[str] = "consent_resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRevoked(ConsentEvent):
    type: ClassVar[str] = "consent_revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentExpired(ConsentEvent):
    type: ClassVar[str] = "consent_expired"
