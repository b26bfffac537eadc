"""What citizens read from their folder. Every query is scoped by the signed-in citizen's id:
another person's object is simply not found (404), exactly like one that doesn't exist."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wallet.fastread import SqliteReads
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


# The dashboard's first call runs on every app open: one fixed statement (no per-request query
# building or cache-key work), every count answered by an index on (owner, …).
_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
SUMMARY_TEXT = """
    SELECT
      (SELECT count(*) FROM procedures WHERE citizen_id = :citizen AND deleted_at IS NULL
         AND status IN (OPEN_STATUSES)),
      (SELECT count(*) FROM procedures WHERE citizen_id = :citizen AND deleted_at IS NULL
         AND status = 'action_required'),
      (SELECT count(*) FROM records WHERE citizen_id = :citizen AND deleted_at IS NULL),
      (SELECT count(*) FROM consents WHERE principal = :citizen AND deleted_at IS NULL
         AND status = 'active'),
      (SELECT count(*) FROM consents WHERE principal = :citizen AND deleted_at IS NULL
         AND status = 'requested'),
      (SELECT count(*) FROM ledger_leaves WHERE subject = :subject AND leaf_index > :seen),
      (SELECT count(*) FROM ledger_queue WHERE subject = :subject)
    """.replace("OPEN_STATUSES", _OPEN)  # our own constants, never input
SUMMARY_SQL = text(SUMMARY_TEXT)


def _summary(row: tuple[Any, ...]) -> Summary:
    return Summary(
        open_procedures=row[0],
        action_required=row[1],
        records=row[2],
        active_consents=row[3],
        pending_requests=row[4],
        new_events=row[5] + row[6],
    )


class FolderReader:
    def __init__(self, ledger: LedgerWriter, fast: SqliteReads | None = None) -> None:
        self.ledger = ledger
        self.fast = fast

    async def summary_for(
        self,
        sessions: async_sessionmaker[AsyncSession],
        citizen_id: str,
        seen_leaf: int | None,
    ) -> Summary:
        """The dashboard counts: on SQLite straight from a read-only connection on the loop
        (see :mod:`wallet.fastread`); otherwise through a read session."""
        if self.fast is not None:
            return _summary(
                self.fast.one(SUMMARY_TEXT, self._summary_params(citizen_id, seen_leaf))
            )
        async with sessions() as session:
            return await self.summary(session, citizen_id, seen_leaf)

    def _summary_params(self, citizen_id: str, seen_leaf: int | None) -> dict[str, Any]:
        return {
            "citizen": citizen_id,
            "subject": self.ledger.subject(citizen_id),
            "seen": -1 if seen_leaf is None else seen_leaf,
        }

    async def summary(
        self, session: AsyncSession, citizen_id: str, seen_leaf: int | None = None
    ) -> Summary:
        """One round trip: every count as a scalar subquery of a single SELECT.

        ``new_events`` counts ledger events about the citizen after ``seen_leaf`` (the highest
        leaf index the phone already showed), plus those still waiting to be integrated.
        """
        row = (
            await session.execute(SUMMARY_SQL, self._summary_params(citizen_id, seen_leaf))
        ).one()
        return _summary(tuple(row))

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
