"""What agencies do to the folder: upsert and withdraw procedures and records.

Upserts are idempotent: the same body for the same external id changes nothing (no new change
sequence, no sync traffic for the citizen, no ledger event). An external id belongs to one
person for good; re-using it for another CURP is refused rather than silently moving data.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.citizens import CitizenRegistry
from eidentity.curp import CurpError, parse_curp
from ledger import events as kinds
from wallet.folder.schemas import ProcedureIn, RecordIn
from wallet.ledger_bridge import LedgerWriter
from wallet.models import AgencyCategory, DataCategory, Procedure, Record
from wallet.problems import ApiProblem
from wallet.sync import citizen_owner, next_change_seq

MAX_RECORD_DATA_BYTES = 64 * 1024


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a digest is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True, slots=True)
class Upserted:
    id: str
    citizen_id: str
    created: bool
    changed: bool
    updated_at: datetime
    digest: str
    #: Queue id of the record's ledger event (its anchor until integrated); 0 when none.
    queue_id: int = 0


def _curp(raw: str) -> str:
    try:
        return parse_curp(raw).value
    except CurpError as exc:
        raise ApiProblem(
            422, "curp-invalid", "La CURP no es válida.", exc.message, part=exc.part
        ) from None


def _conflict(kind: str) -> ApiProblem:
    return ApiProblem(
        409,
        "external-id-conflict",
        "Ese identificador ya pertenece a otra persona.",
        f"El {kind} con ese identificador externo se publicó para otra CURP; "
        "usa un identificador nuevo.",
    )


class Publisher:
    def __init__(self, registry: CitizenRegistry, ledger: LedgerWriter) -> None:
        self.registry = registry
        self.ledger = ledger

    async def _citizen_for(self, session: AsyncSession, curp: str, now: datetime) -> str:
        """The citizen of this CURP, enrolling them if an agency is first to know them."""
        citizen = await self.registry.by_curp(session, curp)
        if citizen is not None:
            return citizen.id
        result = await self.registry.enrol(session, curp=curp, now=now, via="agency")
        return result.citizen.id

    async def upsert_procedure(
        self,
        session: AsyncSession,
        agency_id: str,
        external_id: str,
        body: ProcedureIn,
        now: datetime,
    ) -> Upserted:
        curp = _curp(body.curp)
        fields: dict[str, Any] = {
            "title": body.title.strip(),
            "status": body.status,
            "steps": msgspec.json.encode(body.steps or []).decode(),
            "next_action": body.next_action,
            "due_date": body.due_date.isoformat() if body.due_date else None,
            "contact": body.contact,
        }
        digest = digest_of({"curp": curp, **fields})
        row = (
            await session.execute(
                select(Procedure)
                .where(Procedure.agency_id == agency_id, Procedure.external_id == external_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        citizen_id = await self._citizen_for(session, curp, now)
        if row is not None and row.citizen_id != citizen_id:
            raise _conflict("trámite")
        if row is not None and row.deleted_at is None and row.body_digest == digest:
            return Upserted(row.id, row.citizen_id, False, False, row.updated_at, digest)
        seq = await next_change_seq(session, citizen_owner(citizen_id))
        created = row is None
        if row is None:
            row = Procedure(
                id=str(uuid.uuid4()),
                agency_id=agency_id,
                external_id=external_id,
                citizen_id=citizen_id,
                created_at=now,
            )
            session.add(row)
        for name, value in fields.items():
            setattr(row, name, value)
        row.body_digest = digest
        row.updated_at = now
        row.deleted_at = None
        row.change_seq = seq
        await session.flush()
        return Upserted(row.id, citizen_id, created, True, now, digest)

    async def upsert_record(
        self,
        session: AsyncSession,
        agency_id: str,
        external_id: str,
        body: RecordIn,
        now: datetime,
    ) -> Upserted:
        curp = _curp(body.curp)
        data_bytes = canonical_json(body.data)
        if len(data_bytes) > MAX_RECORD_DATA_BYTES:
            raise ApiProblem(
                413,
                "record-too-large",
                "El contenido del registro es demasiado grande.",
                f"«data» ocupa {len(data_bytes)} bytes; el máximo es {MAX_RECORD_DATA_BYTES}.",
            )
        category = await session.get(DataCategory, body.category)
        if category is None:
            raise ApiProblem(
                422,
                "category-unknown",
                "La categoría de datos no existe en el catálogo.",
                f"Categoría «{body.category}».",
            )
        allowed = await session.get(AgencyCategory, (agency_id, body.category))
        if allowed is None:
            raise ApiProblem(
                403,
                "category-not-registered",
                "Tu dependencia no tiene registrada esa categoría de datos.",
                f"Categoría «{body.category}»: pide al operador que la agregue a tu registro.",
            )
        digest = hashlib.sha256(data_bytes).hexdigest()
        issued_at = body.issued_at
        if issued_at is not None and issued_at.tzinfo is None:
            raise ApiProblem(
                422,
                "invalid-request",
                "Los datos enviados no son válidos.",
                "issued_at debe incluir zona horaria (p. ej. 2026-01-31T12:00:00Z).",
            )
        if issued_at is not None:
            issued_at = issued_at.astimezone(UTC)
        fingerprint = _fingerprint(
            body.category, body.title.strip(), digest, issued_at, body.signature
        )
        row = (
            await session.execute(
                select(Record)
                .where(Record.agency_id == agency_id, Record.external_id == external_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        citizen_id = await self._citizen_for(session, curp, now)
        if row is not None and row.citizen_id != citizen_id:
            raise _conflict("registro")
        if (
            row is not None
            and row.deleted_at is None
            and fingerprint
            == _fingerprint(
                row.category, row.title, row.digest, row.issued_at, row.issuer_signature
            )
        ):
            return Upserted(row.id, row.citizen_id, False, False, row.updated_at, row.digest)
        seq = await next_change_seq(session, citizen_owner(citizen_id))
        created = row is None
        if row is None:
            row = Record(
                id=str(uuid.uuid4()),
                agency_id=agency_id,
                external_id=external_id,
                citizen_id=citizen_id,
                created_at=now,
            )
            session.add(row)
        row.category = body.category
        row.title = body.title.strip()
        row.data = data_bytes.decode()
        row.digest = digest
        row.issuer_signature = body.signature
        row.issued_at = issued_at
        row.updated_at = now
        row.deleted_at = None
        row.change_seq = seq
        await session.flush()
        queue_id = await self.ledger.record(
            session,
            kinds.RECORD_PUBLISHED if created else kinds.RECORD_UPDATED,
            citizen_id=citizen_id,
            at=now,
            provider=agency_id,
            categories=[body.category],
            outcome="published" if created else "updated",
        )
        return Upserted(row.id, citizen_id, created, True, now, digest, queue_id)

    async def withdraw(
        self,
        session: AsyncSession,
        model: type[Procedure] | type[Record],
        agency_id: str,
        external_id: str,
        now: datetime,
    ) -> Upserted | None:
        """Tombstone the row (the citizen's next sync reports it deleted); None if unknown."""
        found = await session.execute(
            select(model)
            .where(model.agency_id == agency_id, model.external_id == external_id)
            .with_for_update()
        )
        row = cast("Procedure | Record | None", found.scalar_one_or_none())
        if row is None or row.deleted_at is not None:
            return None
        row.deleted_at = now
        row.updated_at = now
        row.change_seq = await next_change_seq(session, citizen_owner(row.citizen_id))
        await session.flush()
        if isinstance(row, Record):
            queue_id = await self.ledger.record(
                session,
                kinds.RECORD_WITHDRAWN,
                citizen_id=row.citizen_id,
                at=now,
                provider=agency_id,
                categories=[row.category],
                outcome="withdrawn",
            )
            return Upserted(row.id, row.citizen_id, False, True, now, row.digest, queue_id)
        return Upserted(row.id, row.citizen_id, False, True, now, row.body_digest)


def _fingerprint(
    category: str, title: str, digest: str, issued_at: datetime | None, signature: str | None
) -> str:
    """What makes two publications of a record the same (the owner is checked apart)."""
    return digest_of(
        {
            "category": category,
            "title": title,
            "data": digest,
            "issued_at": issued_at.isoformat() if issued_at else None,
            "signature": signature,
        }
    )
