"""Data release between agencies (the once-only principle), decided and logged atomically.

One unit of work per request: lock the consents between the citizen and the requesting agency,
lapse what is due, ``decide``, record the use, read the records, append the ledger event —
then commit. Revocation takes the same locks, so once a revoke has answered, no release can
succeed under that consent (on PostgreSQL by row locks, on SQLite by the single writer).
Every permit and every refusal is a ledger event.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consent import machine
from consent.artefact import LedgerAnchor
from consent.decision import Deny, LegalBasis, Permit, decide
from consent.storage import load_for_update
from eidentity.tokens import KeyRing
from ledger import events as kinds
from wallet.consents.schemas import DataReleased, ReleasedRecord
from wallet.consents.service import ConsentService
from wallet.models import AgencyLegalBasis, DataCategory, Record
from wallet.problems import ApiProblem

RECEIPT_TYPE = "data-release-receipt+jwt"


@dataclass(frozen=True, slots=True)
class Refusal(Exception):
    """A refused request, committed to the ledger before the 403 is raised."""

    reason: str
    text: str
    queue_id: int
    request_id: str


class ReleaseService:
    def __init__(self, consents: ConsentService, ring: KeyRing) -> None:
        self.consents = consents
        self.ring = ring

    async def request(
        self,
        session: AsyncSession,
        consumer: str,
        raw_curp: str,
        category: str,
        purpose: str,
        consent_id: str | None,
        now: datetime,
    ) -> DataReleased:
        if await session.get(DataCategory, category) is None:
            raise ApiProblem(
                422,
                "category-unknown",
                "La categoría de datos no existe en el catálogo.",
                f"Categoría «{category}».",
            )
        citizen_id = await self.consents.citizen_for(session, raw_curp, now)
        request_id = uuid.uuid4().hex
        rows = await load_for_update(session, citizen_id, consumer)
        await self.consents.expire_due(session, rows, now)
        bases = [
            LegalBasis(consumer, b.category, b.purpose, b.reference)
            for b in await session.scalars(
                select(AgencyLegalBasis).where(AgencyLegalBasis.agency_id == consumer)
            )
        ]
        verdict = decide(
            [row.to_artefact() for row in rows],
            bases,
            consumer,
            citizen_id,
            category,
            purpose,
            now,
            consent_id=consent_id,
        )
        ledger = self.consents.ledger
        if isinstance(verdict, Deny):
            queue_id = await ledger.record(
                session,
                kinds.DATA_DENIED,
                citizen_id=citizen_id,
                at=now,
                consumer=consumer,
                categories=[category],
                purpose=purpose,
                consent_id=consent_id if verdict.consent_id else None,
                outcome=verdict.reason.value,
                request_id=request_id,
            )
            raise Refusal(verdict.reason.value, verdict.reason.text, queue_id, request_id)
        assert isinstance(verdict, Permit)
        provider: str | None = None
        if verdict.consent_id is not None:
            row = next(r for r in rows if r.consent_id == verdict.consent_id)
            used = machine.record_use(row.to_artefact(), now)
            basis = {"consent_id": verdict.consent_id}
            provider = None if used.data_provider == "any" else used.data_provider
            kind, legal_basis, used_consent = kinds.DATA_RELEASED, None, verdict.consent_id
        else:
            assert verdict.legal_basis is not None
            basis = {"legal_basis": verdict.legal_basis}
            kind, legal_basis, used_consent = kinds.DATA_LEGAL_BASIS, verdict.legal_basis, None
        records = await self._records(session, citizen_id, category, provider)
        holders = {r.agency_id for r in records}
        queue_id = await ledger.record(
            session,
            kind,
            citizen_id=citizen_id,
            at=now,
            consumer=consumer,
            # The holder, when one agency holds all the records released.
            provider=provider or (next(iter(holders)) if len(holders) == 1 else None),
            categories=[category],
            purpose=purpose,
            legal_basis=legal_basis,
            consent_id=used_consent,
            outcome="released",
            request_id=request_id,
            extra={"records": len(records)},
        )
        if verdict.consent_id is not None:
            # The use is a new version of the consent (no status change, so no event of its own:
            # the release above is the event), anchored to the release.
            await self.consents.store(
                session, row, used.with_anchor(LedgerAnchor(queue_id=str(queue_id))), None, now
            )
        released = [_released(r) for r in records]
        receipt = self._receipt(
            request_id, consumer, category, purpose, basis, released, queue_id, now
        )
        return DataReleased(
            request_id=request_id,
            records=released,
            receipt=receipt,
            basis=basis,
            ledger={"queue_id": queue_id},
        )

    async def _records(
        self, session: AsyncSession, citizen_id: str, category: str, provider: str | None
    ) -> list[Record]:
        query = select(Record).where(
            Record.citizen_id == citizen_id,
            Record.category == category,
            Record.deleted_at.is_(None),
        )
        if provider is not None:
            query = query.where(Record.agency_id == provider)
        return list(await session.scalars(query.order_by(Record.created_at, Record.id)))

    def _receipt(
        self,
        request_id: str,
        consumer: str,
        category: str,
        purpose: str,
        basis: dict[str, str],
        records: list[ReleasedRecord],
        queue_id: int,
        now: datetime,
    ) -> str:
        """What was released, to whom, why: signed so the agency can prove lawful receipt."""
        key = self.ring.active
        payload = {
            "request_id": request_id,
            "consumer": consumer,
            "category": category,
            "purpose": purpose,
            **basis,
            "records": [{"id": r.id, "issuer": r.issuer, "digest": r.digest} for r in records],
            "ledger": {"queue_id": queue_id},
            "iat": int(now.timestamp()),
        }
        return jwt.encode(
            payload,
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid, "typ": RECEIPT_TYPE},
        )


def _released(row: Record) -> ReleasedRecord:
    return ReleasedRecord(
        id=row.id,
        issuer=row.agency_id,
        category=row.category,
        title=row.title,
        data=json.loads(row.data),
        digest=row.digest,
        issued_at=row.issued_at,
        issuer_signature=row.issuer_signature,
    )
