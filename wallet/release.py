"""Data release between agencies (the once-only principle), decided and logged atomically.

One unit of work per request (:mod:`wallet.unitofwork`, plain SQL on either database): lock the
consents between the citizen and the requesting agency, ``decide``, read the records, queue
the ledger event, log the use — then commit. Revocation takes the same locks, so once a revoke
has answered, no release can succeed under that consent (on PostgreSQL by row locks, on SQLite
by the single writer). Every permit and every refusal is a ledger event.

Two rare preconditions are settled first, each in its own ORM transaction, and the release is
then run again: a CURP never seen before is enrolled (the ledger needs the citizen's
pseudonym), and a consent whose time is up is lapsed, so the expiry has its own event before
anything is decided on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Unpack

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from consent import machine
from consent.artefact import ANY_PROVIDER, ConsentArtefact
from consent.decision import Deny, LegalBasis, Permit, decide, needs_window_count
from consent.storage import load_for_update, stored_artefact
from eidentity.clock import Clock
from eidentity.curp import CurpError, parse_curp
from eidentity.tokens import KeyRing
from ledger import events as kinds
from ledger.storage import INSERT_QUEUE_SQL, queue_row
from wallet.consents.schemas import DataReleased, ReleasedRecord
from wallet.consents.service import ConsentService
from wallet.ledger_bridge import EventFields
from wallet.problems import ApiProblem
from wallet.sync import citizen_owner
from wallet.unitofwork import Sql, Tx, TxSource

RECEIPT_TYPE = "data-release-receipt+jwt"

CATEGORY_EXISTS = Sql("SELECT 1 FROM data_categories WHERE code = :code")
CITIZEN_BY_CURP = Sql("SELECT id FROM citizens WHERE curp = :curp")
_CONSENTS = (
    "SELECT consent_id, artefact, use_count, last_used_at FROM consents"
    " WHERE principal = :principal AND consumer = :consumer ORDER BY consent_id"
)
CONSENTS_LOCKED = Sql(_CONSENTS + " FOR UPDATE")
# Where the database lock already serialises writers (SQLite), the citizen and their consents
# with the agency come back in one statement: the citizen's id on every row, and one row with
# no consent when there is none.
CITIZEN_AND_CONSENTS = Sql(
    "SELECT c.id, k.consent_id, k.artefact, k.use_count, k.last_used_at FROM citizens c"
    " LEFT JOIN consents k ON k.principal = c.id AND k.consumer = :consumer"
    " WHERE c.curp = :curp ORDER BY k.consent_id"
)
RECENT_USES = Sql(
    "SELECT count(*) FROM consent_uses WHERE consent_id = :consent_id AND used_at > :start"
)
LEGAL_BASES = Sql(
    "SELECT reference FROM agency_legal_bases"
    " WHERE agency_id = :agency AND category = :category AND purpose = :purpose"
)
_RECORDS = (
    "SELECT id, agency_id, category, title, data, digest, issued_at, issuer_signature"
    " FROM records WHERE citizen_id = :citizen AND category = :category"
    " AND deleted_at IS NULL"
)
RECORDS = Sql(_RECORDS + " ORDER BY created_at, id")
RECORDS_FROM = Sql(_RECORDS + " AND agency_id = :provider ORDER BY created_at, id")
QUEUE_EVENT = Sql(INSERT_QUEUE_SQL)
NEXT_CHANGE_SEQ = Sql(
    "INSERT INTO sync_counters (owner, seq) VALUES (:owner, 1)"
    " ON CONFLICT (owner) DO UPDATE SET seq = sync_counters.seq + 1 RETURNING seq"
)
CONSENT_USED = Sql(
    "UPDATE consents SET use_count = :use_count, last_used_at = :used_at,"
    " change_seq = :seq, updated_at = :now WHERE consent_id = :consent_id"
)
LOG_USE = Sql(
    "INSERT INTO consent_uses (consent_id, used_at, queue_id)"
    " VALUES (:consent_id, :used_at, :queue_id)"
)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused request, already committed to the ledger (the route answers 403)."""

    reason: str
    text: str
    queue_id: int
    request_id: str


@dataclass(frozen=True, slots=True)
class _Enrol:
    curp: str


@dataclass(frozen=True, slots=True)
class _Lapse:
    citizen_id: str


@dataclass(frozen=True, slots=True)
class _UnknownCategory:
    """Returned, not raised, from inside the unit of work: a batch need not roll back."""


class ReleaseService:
    def __init__(
        self,
        consents: ConsentService,
        ring: KeyRing,
        transactions: TxSource,
        orm_writes: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        clock: Clock,
    ) -> None:
        self.consents = consents
        self.ring = ring
        self.transactions = transactions
        self.orm_writes = orm_writes
        self.clock = clock
        #: Categories seen to exist (the catalogue only grows: no command removes one).
        self._categories: set[str] = set()

    async def request(
        self,
        consumer: str,
        raw_curp: str,
        category: str,
        purpose: str,
        consent_id: str | None,
        now: datetime,
    ) -> DataReleased | Refused:
        try:
            curp = parse_curp(raw_curp).value
        except CurpError as exc:
            raise ApiProblem(
                422, "curp-invalid", "La CURP no es válida.", exc.message, part=exc.part
            ) from None
        # At most one enrolment and one lapse, then the release itself.
        for _ in range(3):
            outcome = await self.transactions.run(
                lambda tx: self._release(tx, consumer, curp, category, purpose, consent_id, now)
            )
            if isinstance(outcome, _UnknownCategory):
                raise ApiProblem(
                    422,
                    "category-unknown",
                    "La categoría de datos no existe en el catálogo.",
                    f"Categoría «{category}».",
                )
            if isinstance(outcome, _Enrol):
                async with self.orm_writes() as session:
                    await self.consents.citizen_for(session, outcome.curp, now)
                    await session.commit()
            elif isinstance(outcome, _Lapse):
                async with self.orm_writes() as session:
                    rows = await load_for_update(session, outcome.citizen_id, consumer)
                    await self.consents.expire_due(session, rows, now)
                    await session.commit()
            else:
                return outcome
        raise RuntimeError("release preconditions did not settle")  # pragma: no cover

    async def _release(
        self,
        tx: Tx,
        consumer: str,
        curp: str,
        category: str,
        purpose: str,
        consent_id: str | None,
        now: datetime,
    ) -> DataReleased | Refused | _Enrol | _Lapse | _UnknownCategory:
        if category not in self._categories:
            if await tx.one(CATEGORY_EXISTS, {"code": category}) is None:
                return _UnknownCategory()
            self._categories.add(category)
        if tx.locks_rows:
            found = await tx.one(CITIZEN_BY_CURP, {"curp": curp})
            if found is None:
                return _Enrol(curp)
            citizen_id: str = found[0]
            rows = await tx.all(CONSENTS_LOCKED, {"principal": citizen_id, "consumer": consumer})
        else:
            joined = await tx.all(CITIZEN_AND_CONSENTS, {"curp": curp, "consumer": consumer})
            if not joined:
                return _Enrol(curp)
            citizen_id = joined[0][0]
            rows = [r[1:] for r in joined if r[1] is not None]
        artefacts = [stored_artefact(r[1]).with_usage(r[2], tx.instant(r[3])) for r in rows]
        if any(machine.is_due(a, now) for a in artefacts):
            return _Lapse(citizen_id)
        recent = await self._recent_uses(tx, artefacts, consent_id, now)
        bases: list[LegalBasis] = []
        if consent_id is None:  # naming a consent means acting under it: no legal basis then
            bases = [
                LegalBasis(consumer, category, purpose, r[0])
                for r in await tx.all(
                    LEGAL_BASES, {"agency": consumer, "category": category, "purpose": purpose}
                )
            ]
        verdict = decide(
            artefacts,
            bases,
            consumer,
            citizen_id,
            category,
            purpose,
            now,
            consent_id=consent_id,
            recent_uses=recent,
        )
        request_id = secrets.token_hex(16)
        if isinstance(verdict, Deny):
            queue_id = await self._event(
                tx,
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
            return Refused(verdict.reason.value, verdict.reason.text, queue_id, request_id)
        assert isinstance(verdict, Permit)
        used: ConsentArtefact | None = None
        provider: str | None = None
        if verdict.consent_id is not None:
            chosen = next(a for a in artefacts if a.consent_id == verdict.consent_id)
            used = machine.record_use(chosen, now, recent.get(chosen.consent_id))
            basis = {"consent_id": verdict.consent_id}
            provider = None if used.data_provider == ANY_PROVIDER else used.data_provider
            kind, legal_basis = kinds.DATA_RELEASED, None
        else:
            assert verdict.legal_basis is not None
            basis = {"legal_basis": verdict.legal_basis}
            kind, legal_basis = kinds.DATA_LEGAL_BASIS, verdict.legal_basis
        records = await self._records(tx, citizen_id, category, provider)
        holders = {r.issuer for r in records}
        queue_id = await self._event(
            tx,
            kind,
            citizen_id=citizen_id,
            at=now,
            consumer=consumer,
            # The holder, when one agency holds all the records released.
            provider=provider or (next(iter(holders)) if len(holders) == 1 else None),
            categories=[category],
            purpose=purpose,
            legal_basis=legal_basis,
            consent_id=verdict.consent_id,
            outcome="released",
            request_id=request_id,
            extra={"records": len(records)},
        )
        if used is not None:
            # A use is no new version (no status changed): counters, the use log and the
            # citizen's sync position move on; the release event above is its evidence.
            assert used.last_used_at is not None
            used_at = tx.stamp(used.last_used_at)
            seq = await tx.one(NEXT_CHANGE_SEQ, {"owner": citizen_owner(citizen_id)})
            assert seq is not None
            await tx.run(
                CONSENT_USED,
                {
                    "consent_id": used.consent_id,
                    "use_count": used.use_count,
                    "used_at": used_at,
                    "seq": seq[0],
                    "now": tx.stamp(now),
                },
            )
            await tx.run(
                LOG_USE, {"consent_id": used.consent_id, "used_at": used_at, "queue_id": queue_id}
            )
        receipt = self._receipt(
            request_id, consumer, category, purpose, basis, records, queue_id, now
        )
        return DataReleased(
            request_id=request_id,
            records=records,
            receipt=receipt,
            basis=basis,
            ledger={"queue_id": queue_id},
        )

    async def _recent_uses(
        self, tx: Tx, artefacts: list[ConsentArtefact], consent_id: str | None, now: datetime
    ) -> dict[str, int]:
        """Uses inside each frequency window, counted only where the count could matter."""
        recent: dict[str, int] = {}
        for artefact in artefacts:
            if consent_id not in (None, artefact.consent_id) or not needs_window_count(artefact):
                continue
            start = tx.stamp(artefact.frequency.window_start(now))
            row = await tx.one(RECENT_USES, {"consent_id": artefact.consent_id, "start": start})
            recent[artefact.consent_id] = int(row[0]) if row else 0
        return recent

    async def _event(self, tx: Tx, kind: str, **fields: Unpack[EventFields]) -> int:
        params = queue_row(self.consents.ledger.event(kind, **fields))
        params["at"] = tx.stamp(params["at"])
        row = await tx.one(QUEUE_EVENT, params)
        assert row is not None
        return int(row[0])

    async def _records(
        self, tx: Tx, citizen_id: str, category: str, provider: str | None
    ) -> list[ReleasedRecord]:
        params = {"citizen": citizen_id, "category": category}
        if provider is not None:
            rows = await tx.all(RECORDS_FROM, {**params, "provider": provider})
        else:
            rows = await tx.all(RECORDS, params)
        return [
            ReleasedRecord(
                id=r[0],
                issuer=r[1],
                category=r[2],
                title=r[3],
                data=msgspec.json.decode(r[4]),
                digest=r[5],
                issued_at=tx.instant(r[6]),
                issuer_signature=r[7],
            )
            for r in rows
        ]

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
        return self.ring.sign(payload, typ=RECEIPT_TYPE)
