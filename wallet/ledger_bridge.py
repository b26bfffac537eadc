"""The wallet's side of the ledger: turn what happened into events, in the action's transaction.

Every caller passes the session of the action itself, so the event commits or rolls back with
it (no action without its event, no event without its action). The citizen id becomes a keyed
pseudonym here; nothing else of the person goes into a leaf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from consent.events import ConsentEvent
from ledger import events as kinds
from ledger.events import ExtraValue, LedgerEvent, pseudonym
from ledger.storage import append

CONSENT_EVENT_TYPES = {
    "consent_requested": kinds.CONSENT_REQUESTED,
    "consent_granted": kinds.CONSENT_GRANTED,
    "consent_denied": kinds.CONSENT_DENIED,
    "consent_paused": kinds.CONSENT_PAUSED,
    "consent_resumed": kinds.CONSENT_RESUMED,
    "consent_revoked": kinds.CONSENT_REVOKED,
    "consent_expired": kinds.CONSENT_EXPIRED,
}


class _Required(TypedDict):
    citizen_id: str
    at: datetime


class EventFields(_Required, total=False):
    """What :meth:`LedgerWriter.event` takes besides the event type."""

    consumer: str | None
    provider: str | None
    categories: Iterable[str]
    purpose: str | None
    legal_basis: str | None
    consent_id: str | None
    outcome: str | None
    request_id: str | None
    extra: Mapping[str, ExtraValue] | None


class LedgerWriter:
    def __init__(self, pseudonym_secret: bytes) -> None:
        self._secret = pseudonym_secret
        # A citizen's pseudonym never changes; remembered per process (ids, never CURPs).
        self.subject = lru_cache(maxsize=65_536)(self._pseudonym)

    def _pseudonym(self, citizen_id: str) -> str:
        return pseudonym(self._secret, citizen_id)

    async def record(self, session: AsyncSession, kind: str, **fields: Unpack[EventFields]) -> int:
        """Queue one event; returns its queue id (the anchor until the leaf index is known)."""
        return await append(session, self.event(kind, **fields))

    def event(
        self,
        kind: str,
        *,
        citizen_id: str,
        at: datetime,
        consumer: str | None = None,
        provider: str | None = None,
        categories: Iterable[str] = (),
        purpose: str | None = None,
        legal_basis: str | None = None,
        consent_id: str | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
        extra: Mapping[str, ExtraValue] | None = None,
    ) -> LedgerEvent:
        """The event, with the citizen replaced by their pseudonym (no I/O)."""
        return LedgerEvent(
            type=kind,
            at=at,
            subject=self.subject(citizen_id),
            consumer=consumer,
            provider=provider,
            categories=tuple(sorted(set(categories))),
            purpose=purpose,
            legal_basis=legal_basis,
            consent_id=consent_id,
            outcome=outcome,
            request_id=request_id,
            extra=dict(extra or {}),
        )

    async def consent_event(self, session: AsyncSession, event: ConsentEvent) -> int:
        return await self.record(
            session,
            CONSENT_EVENT_TYPES[event.type],
            citizen_id=event.principal,
            at=event.at,
            consumer=event.consumer,
            provider=event.provider,
            categories=event.categories,
            purpose=event.purpose,
            legal_basis=event.legal_basis,
            consent_id=event.consent_id,
            outcome=event.by.value,
        )
