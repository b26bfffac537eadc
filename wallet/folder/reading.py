"""What citizens read from their folder. Every query is scoped by the signed-in citizen's id:
another person's object is simply not found (404), exactly like one that doesn't exist."""

from __future__ import annotations

import json
from datetime import date

import msgspec
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from consent.storage import ConsentRow
from ledger.storage import leaves, queue
from wallet.folder.schemas import (
    OPEN_STATUSES,
    MessageOut,
    ProcedureDetail,
    ProcedureItem,
    RecordDetail,
    RecordItem,
    Step,
    Summary,
)
from wallet.ledger_bridge import LedgerWriter
from wallet.models import Agency, DataCategory, Message, Procedure, Record
from wallet.problems import ApiProblem

NOT_FOUND = ApiProblem(404, "not-found", "No encontramos lo que buscas.")


def procedure_item(row: Procedure, agency_name: str) -> ProcedureItem:
    steps = msgspec.json.decode(row.steps, type=list[Step]) if row.steps else None
    return ProcedureItem(
        id=row.id,
        agency=row.agency_id,
        agency_name=agency_name,
        title=row.title,
        status=row.status,  # type: ignore[arg-type]
        updated_at=row.updated_at,
        steps=steps or None,
        next_action=row.next_action,
        due_date=date.fromisoformat(row.due_date) if row.due_date else None,
        contact=row.contact,
    )


def record_item(row: Record, agency_name: str, category_name: str) -> RecordItem:
    return RecordItem(
        id=row.id,
        agency=row.agency_id,
        agency_name=agency_name,
        category=row.category,
        category_name=category_name,
        title=row.title,
        digest=row.digest,
        updated_at=row.updated_at,
        issued_at=row.issued_at,
        signed=row.issuer_signature is not None,
    )


def record_detail(row: Record, agency_name: str, category_name: str) -> RecordDetail:
    item = record_item(row, agency_name, category_name)
    return RecordDetail(
        **msgspec.structs.asdict(item),
        data=json.loads(row.data),
        issuer_signature=row.issuer_signature,
    )


class FolderReader:
    def __init__(self, ledger: LedgerWriter) -> None:
        self.ledger = ledger

    async def summary(
        self, session: AsyncSession, citizen_id: str, seen_leaf: int | None = None
    ) -> Summary:
        """One round trip: every count as a scalar subquery of a single SELECT.

        ``new_events`` counts ledger events about the citizen after ``seen_leaf`` (the highest
        leaf index the phone already showed), plus those still waiting to be integrated.
        """
        live_procedure = and_(Procedure.citizen_id == citizen_id, Procedure.deleted_at.is_(None))
        open_procedures = (
            select(func.count())
            .where(live_procedure, Procedure.status.in_(OPEN_STATUSES))
            .scalar_subquery()
        )
        action_required = (
            select(func.count())
            .where(live_procedure, Procedure.status == "action_required")
            .scalar_subquery()
        )
        records = (
            select(func.count())
            .where(Record.citizen_id == citizen_id, Record.deleted_at.is_(None))
            .scalar_subquery()
        )
        mine = and_(ConsentRow.principal == citizen_id, ConsentRow.deleted_at.is_(None))
        active_consents = (
            select(func.count()).where(mine, ConsentRow.status == "active").scalar_subquery()
        )
        pending_requests = (
            select(func.count()).where(mine, ConsentRow.status == "requested").scalar_subquery()
        )
        subject = self.ledger.subject(citizen_id)
        integrated = leaves.c.subject == subject
        if seen_leaf is not None:
            integrated = and_(integrated, leaves.c.leaf_index > seen_leaf)
        new_events = select(func.count()).select_from(leaves).where(integrated).scalar_subquery()
        queued = (
            select(func.count())
            .select_from(queue)
            .where(queue.c.subject == subject)
            .scalar_subquery()
        )
        row = (
            await session.execute(
                select(
                    open_procedures,
                    action_required,
                    records,
                    active_consents,
                    pending_requests,
                    new_events,
                    queued,
                )
            )
        ).one()
        return Summary(
            open_procedures=row[0],
            action_required=row[1],
            records=row[2],
            active_consents=row[3],
            pending_requests=row[4],
            new_events=row[5] + row[6],
        )

    async def record(self, session: AsyncSession, citizen_id: str, record_id: str) -> RecordDetail:
        result = await session.execute(
            select(Record, Agency.name, DataCategory.name)
            .join(Agency, Agency.id == Record.agency_id)
            .join(DataCategory, DataCategory.code == Record.category)
            .where(
                Record.id == record_id,
                Record.citizen_id == citizen_id,
                Record.deleted_at.is_(None),
            )
        )
        found = result.one_or_none()
        if found is None:
            raise NOT_FOUND
        return record_detail(found[0], found[1], found[2])

    async def procedure(
        self, session: AsyncSession, citizen_id: str, procedure_id: str
    ) -> ProcedureDetail:
        found = (
            await session.execute(
                select(Procedure, Agency.name)
                .join(Agency, Agency.id == Procedure.agency_id)
                .where(
                    Procedure.id == procedure_id,
                    Procedure.citizen_id == citizen_id,
                    Procedure.deleted_at.is_(None),
                )
            )
        ).one_or_none()
        if found is None:
            raise NOT_FOUND
        messages = await session.scalars(
            select(Message)
            .where(Message.procedure_id == procedure_id)
            .order_by(Message.citizen_seq)
        )
        item = procedure_item(found[0], found[1])
        return ProcedureDetail(
            **msgspec.structs.asdict(item), messages=[message_out(m) for m in messages]
        )


def message_out(row: Message) -> MessageOut:
    return MessageOut(
        id=row.id,
        procedure_id=row.procedure_id,
        author=row.author,  # type: ignore[arg-type]
        body=row.body,
        created_at=row.created_at,
    )
