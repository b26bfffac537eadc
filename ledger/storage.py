"""Ledger tables (SQLAlchemy Core) and the write path every action uses: :func:`append`.

Tables, all on :data:`ledger_metadata` so the app's Alembic migration can be generated from it:

``ledger_queue``
    Events appended by actions, in the action's own transaction, not yet in the tree. The
    queue id is the event's anchor until the sequencer integrates it. AUTOINCREMENT on SQLite
    so an id is never reused after the queue empties (the anchor must stay unique).
``ledger_leaves``
    The log: ``leaf_index`` → exact leaf bytes, plus columns copied from the event so
    citizens' and regulators' queries use indexes instead of parsing JSON. ``queue_id`` maps
    an anchor to its leaf index.
``ledger_nodes``
    Every *perfect* subtree hash ``(level, idx)`` — level 0 being leaf hashes. They never
    change once written, and any proof for any historical tree size needs only O(log n) of
    them, read in one query. ``WITHOUT ROWID`` on SQLite: one B-tree, no hidden rowid.
``ledger_checkpoints``
    Every signed checkpoint (one per sequencer batch), the C2SP note text as served.
``ledger_state``
    One row (``id = 1``): current size and root. The sequencer locks this row at the start of
    each batch, which is what makes it the single writer across processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import DateTime, TypeDecorator

from ledger.events import LedgerEvent
from ledger.merkle import EMPTY_ROOT
from ledger.note import Checkpoint, parse_checkpoint

__all__ = [
    "EVENT_COLUMNS",
    "NAMING",
    "STATE_ID",
    "Executor",
    "SignedCheckpoint",
    "UTCDateTime",
    "append",
    "append_many",
    "checkpoints",
    "dialect_name",
    "ensure_state",
    "leaves",
    "ledger_metadata",
    "nodes",
    "nodes_matching",
    "queue",
    "state",
]

NAMING: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ledger_metadata = MetaData(naming_convention=NAMING)
"""All ledger tables; the app's migration creates them from this metadata."""

STATE_ID: Final = 1

# INTEGER PRIMARY KEY on SQLite is the rowid itself (one B-tree, no extra index); BIGINT
# elsewhere, because a national log outgrows 2**31 entries.
_Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both backends (SQLite stores no zone: tag it UTC).

    Stored on SQLite as ``YYYY-MM-DD HH:MM:SS.ffffff`` strings, which sort chronologically,
    so time ranges work with plain comparisons on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def _event_columns() -> list[Column[Any]]:
    """Columns copied out of the event, identical in the queue and the leaves."""
    return [
        Column("type", String(64), nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("subject", String(64)),
        Column("consumer", String(64)),
        Column("purpose", String(128)),
        Column("legal_basis", String(255)),
        Column("outcome", String(64)),
    ]


EVENT_COLUMNS: Final = ("type", "at", "subject", "consumer", "purpose", "legal_basis", "outcome")

queue = Table(
    "ledger_queue",
    ledger_metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("leaf", LargeBinary, nullable=False),
    *_event_columns(),
    sqlite_autoincrement=True,
)

leaves = Table(
    "ledger_leaves",
    ledger_metadata,
    Column("leaf_index", _Id, primary_key=True, autoincrement=False),
    Column("queue_id", BigInteger, nullable=False, unique=True),
    Column("leaf", LargeBinary, nullable=False),
    *_event_columns(),
    CheckConstraint("leaf_index >= 0", name="leaf_index_non_negative"),
)
# Every query pages by leaf_index, so each filter column is indexed together with it.
Index("ix_ledger_leaves_subject", leaves.c.subject, leaves.c.leaf_index)
Index("ix_ledger_leaves_consumer", leaves.c.consumer, leaves.c.leaf_index)
Index("ix_ledger_leaves_type", leaves.c.type, leaves.c.leaf_index)
Index("ix_ledger_leaves_purpose", leaves.c.purpose, leaves.c.leaf_index)
Index("ix_ledger_leaves_legal_basis", leaves.c.legal_basis, leaves.c.leaf_index)
Index("ix_ledger_leaves_at", leaves.c.at)

nodes = Table(
    "ledger_nodes",
    ledger_metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

checkpoints = Table(
    "ledger_checkpoints",
    ledger_metadata,
    Column("tree_size", _Id, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

state = Table(
    "ledger_state",
    ledger_metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(f"id = {STATE_ID}", name="single_row"),
)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint as stored and served: parsed fields plus the exact signed note text."""

    checkpoint: Checkpoint
    note: str
    created_at: datetime

    @classmethod
    def from_note(cls, note: str, created_at: datetime) -> SignedCheckpoint:
        """Rebuild from a stored note we signed ourselves (parsed, not re-verified)."""
        return cls(parse_checkpoint(note[: note.rfind("\n\n") + 1]), note, created_at)

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root_hash


Executor = AsyncConnection | AsyncSession
"""Anything with ``await x.execute(statement, params)``: the caller's connection or session."""


def queue_row(event: LedgerEvent) -> dict[str, Any]:
    """The queue row of ``event``: the parameters of :data:`INSERT_QUEUE_SQL`."""
    return {
        "leaf": event.to_leaf(),
        "type": event.type,
        "at": event.at,
        "subject": event.subject,
        "consumer": event.consumer,
        "purpose": event.purpose,
        "legal_basis": event.legal_basis,
        "outcome": event.outcome,
    }


def nodes_matching(wanted: Iterable[tuple[int, int]]) -> ColumnElement[bool]:
    """``(level = ? AND idx = ?) OR …`` — one primary-key point lookup per node.

    Written out rather than as a row-value ``(level, idx) IN (…)`` because SQLite plans that
    as a full table scan (seconds at 10 M leaves), while the OR form is a multi-index OR of
    point searches on SQLite and a bitmap OR of index scans on PostgreSQL.
    """
    level, idx = nodes.c.level, nodes.c.idx
    return or_(*(and_(level == lv, idx == ix) for lv, ix in wanted))


async def dialect_name(conn: Executor) -> str:
    """``sqlite`` or ``postgresql``: the few statements that differ branch on it."""
    if isinstance(conn, AsyncSession):
        return (await conn.connection()).dialect.name
    return conn.dialect.name


_INSERT_QUEUE_RETURNING = queue.insert().returning(queue.c.id)

#: :func:`append` in portable SQL with ``:named`` parameters (the keys of :func:`queue_row`),
#: for callers that run plain-SQL units of work; it returns the queue id. Timestamps must be
#: bound the way ``UTCDateTime`` binds them on the database at hand.
INSERT_QUEUE_SQL: Final = (
    "INSERT INTO ledger_queue (leaf, type, at, subject, consumer, purpose, legal_basis, outcome)"
    " VALUES (:leaf, :type, :at, :subject, :consumer, :purpose, :legal_basis, :outcome)"
    " RETURNING id"
)


async def append(conn: Executor, event: LedgerEvent) -> int:
    """Queue ``event`` inside the caller's transaction and return its queue id (the anchor).

    No commit here: the event commits or rolls back with the action that caused it, so there
    is never an action without its event nor an event without its action. The id resolves to
    a leaf index once the sequencer integrates it (:func:`ledger.proofs.leaf_index_for`).
    """
    result = await conn.execute(_INSERT_QUEUE_RETURNING, queue_row(event))
    return int(result.scalar_one())


async def append_many(conn: Executor, events: list[LedgerEvent]) -> None:
    """Queue several events in one ``executemany`` (bulk imports, benchmarks); no ids back."""
    if events:
        await conn.execute(queue.insert(), [queue_row(e) for e in events])


async def ensure_state(conn: Executor) -> None:
    """Create the state row (empty tree) if it does not exist; safe to race."""
    values = {"id": STATE_ID, "size": 0, "root": EMPTY_ROOT, "updated_at": datetime.now(UTC)}
    name = await dialect_name(conn)
    if name == "postgresql":
        await conn.execute(pg_insert(state).values(values).on_conflict_do_nothing())
    elif name == "sqlite":
        await conn.execute(sqlite_insert(state).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two supported backends are tested
        found = await conn.execute(select(state.c.id).where(state.c.id == STATE_ID))
        if found.first() is None:
            await conn.execute(state.insert().values(values))
