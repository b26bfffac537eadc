"""Read side of the ledger: checkpoints, leaves, proofs, event queries, stats and export.

Proofs come from the stored perfect-subtree hashes (``ledger_nodes``): the RFC 9162 proof is
split into the nodes it needs (:func:`ledger.merkle.required_nodes`, at most ~2·log2 n of
them) and those are read in *one* indexed query, whatever the tree size — which is what keeps
proof generation within the 2 ms budget at 10 M entries.

Every function takes the caller's ``AsyncConnection`` or ``AsyncSession`` (read-only use),
except :func:`export_leaves`, which takes the engine and reads in short transactions so a long
export never pins one snapshot.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ledger.events import LedgerEvent
from ledger.merkle import (
    Node,
    assemble_proof,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    required_nodes,
)
from ledger.storage import (
    STATE_ID,
    Executor,
    SignedCheckpoint,
    checkpoints,
    dialect_name,
    leaves,
    nodes,
    state,
)

__all__ = [
    "MAX_PAGE",
    "ConsistencyProof",
    "EventFilter",
    "EventPage",
    "EventRecord",
    "ExportedLeaf",
    "InclusionProof",
    "LedgerIntegrityError",
    "LedgerStats",
    "ProofRequestError",
    "checkpoint_at",
    "consistency_proof",
    "current_size",
    "events_for_subject",
    "export_leaves",
    "get_leaf",
    "inclusion_proof",
    "inclusion_proofs",
    "latest_checkpoint",
    "leaf_index_for",
    "list_checkpoints",
    "query_events",
    "stats",
]

MAX_PAGE: Final = 500
"""Largest page any event query returns (phones ask for ~20; regulators page through)."""


class ProofRequestError(ValueError):
    """A client asked for something that does not exist; ``str()`` is the es-MX explanation.

    ``code`` is a stable machine name for the problem type (``leaf-index-out-of-range``,
    ``tree-size-out-of-range``, ``invalid-range``).
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class LedgerIntegrityError(RuntimeError):
    """Stored nodes needed for an existing tree size are missing: the database is damaged."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 inclusion proof; :meth:`to_json` is the HTTP body (SPEC contract)."""

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "hashes": [_b64(h) for h in self.hashes],
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 consistency proof; :meth:`to_json` is the HTTP body (SPEC contract)."""

    first: int
    second: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "hashes": [_b64(h) for h in self.hashes],
        }


# ---------------------------------------------------------------------------------------------
# Checkpoints and leaves
# ---------------------------------------------------------------------------------------------


async def current_size(conn: Executor) -> int:
    """Number of integrated leaves (0 before the sequencer's first run)."""
    value = (await conn.execute(select(state.c.size).where(state.c.id == STATE_ID))).scalar()
    return int(value or 0)


def _checkpoint_query() -> Select[Any]:
    return select(checkpoints.c.note, checkpoints.c.created_at)


async def latest_checkpoint(conn: Executor) -> SignedCheckpoint | None:
    """The newest signed checkpoint — the body of ``GET /ledger/checkpoint``."""
    row = (
        await conn.execute(_checkpoint_query().order_by(checkpoints.c.tree_size.desc()).limit(1))
    ).first()
    return None if row is None else SignedCheckpoint.from_note(row.note, row.created_at)


async def checkpoint_at(conn: Executor, tree_size: int) -> SignedCheckpoint | None:
    """The checkpoint signed for exactly ``tree_size``, if a batch ended there."""
    row = (
        await conn.execute(_checkpoint_query().where(checkpoints.c.tree_size == tree_size))
    ).first()
    return None if row is None else SignedCheckpoint.from_note(row.note, row.created_at)


async def list_checkpoints(
    conn: Executor, *, after_size: int = -1, limit: int = 1000
) -> list[SignedCheckpoint]:
    """Checkpoints with ``tree_size > after_size``, oldest first (witnesses, audits, tests)."""
    result = await conn.execute(
        _checkpoint_query()
        .where(checkpoints.c.tree_size > after_size)
        .order_by(checkpoints.c.tree_size)
        .limit(limit)
    )
    return [SignedCheckpoint.from_note(r.note, r.created_at) for r in result]


async def get_leaf(conn: Executor, leaf_index: int) -> bytes | None:
    """The exact leaf bytes at ``leaf_index`` (``None`` if not integrated yet)."""
    value = (
        await conn.execute(select(leaves.c.leaf).where(leaves.c.leaf_index == leaf_index))
    ).scalar()
    return None if value is None else bytes(value)


async def leaf_index_for(conn: Executor, queue_id: int) -> int | None:
    """Resolve an append's anchor (queue id) to its leaf index once integrated."""
    value = (
        await conn.execute(select(leaves.c.leaf_index).where(leaves.c.queue_id == queue_id))
    ).scalar()
    return None if value is None else int(value)


# ---------------------------------------------------------------------------------------------
# Proofs
# ---------------------------------------------------------------------------------------------

_SIZE_MARK: Final = -1  # "level" of the state row smuggled into the node query (see below)
_MAX_NODES_PER_QUERY: Final = 256  # SQLite parses an OR chain as deep as it is long (max 1000)


@functools.lru_cache(maxsize=512)
def _node_sql(count: int, paramstyle: str) -> str:
    """The single proof query for ``count`` nodes, built once per count.

    Node lookups are ``(level = ? AND idx = ?) OR …`` (see
    :func:`ledger.storage.nodes_matching`); the state row rides along as ``(-1, size, root)``
    through ``UNION ALL``, so the range check costs no extra round trip. Plain SQL text:
    building and cache-keying an equivalent Core expression of ~40 ``OR`` terms costs over a
    millisecond of Python per request, ten times the database work.
    """
    if paramstyle == "qmark":
        where = " OR ".join("(level = ? AND idx = ?)" for _ in range(count))
    else:  # SQLAlchemy text(): named parameters, translated for the driver
        where = " OR ".join(f"(level = :l{k} AND idx = :i{k})" for k in range(count))
    # Only constant identifiers and placeholders are spliced in; values are always bound.
    size_row = f"SELECT {_SIZE_MARK}, size, root FROM {state.name} WHERE id = {STATE_ID}"  # noqa: S608
    if not count:
        return size_row
    return f"SELECT level, idx, hash FROM {nodes.name} WHERE {where} UNION ALL {size_row}"  # noqa: S608


async def _nodes_and_size(conn: Executor, wanted: Sequence[Node]) -> tuple[dict[Node, bytes], int]:
    """Fetch ``wanted`` nodes and the current tree size in one query (see :func:`_node_sql`).

    On SQLite the query goes straight to the aiosqlite connection under SQLAlchemy (same
    connection, same transaction): ``execute_fetchall`` is one hop to SQLite's thread where
    the adapter takes four, and those hops were three quarters of a proof's time.
    """
    connection = await conn.connection() if isinstance(conn, AsyncSession) else conn
    rows: Iterable[Sequence[Any]]
    driver = None
    if connection.dialect.driver == "aiosqlite":
        driver = (await connection.get_raw_connection()).driver_connection
    if driver is not None:
        flat = [value for node in wanted for value in node]
        rows = await driver.execute_fetchall(_node_sql(len(wanted), "qmark"), flat)
    else:
        params: dict[str, int] = {}
        for k, (level, idx) in enumerate(wanted):
            params[f"l{k}"] = level
            params[f"i{k}"] = idx
        rows = await connection.execute(text(_node_sql(len(wanted), "named")), params)
    found: dict[Node, bytes] = {}
    size = 0
    for level, idx, value in rows:
        if level == _SIZE_MARK:
            size = int(idx)
        else:
            found[(level, idx)] = bytes(value)
    return found, size


def _check_complete(wanted: Sequence[Node], found: dict[Node, bytes], tree_size: int) -> None:
    missing = [n for n in wanted if n not in found]
    if missing:
        raise LedgerIntegrityError(f"ledger nodes {missing[:4]} missing for tree size {tree_size}")


def _too_big(tree_size: int, size: int) -> ProofRequestError:
    return ProofRequestError(
        f"El árbol aún no tiene {tree_size} hojas: su tamaño actual es {size}. "
        "Pide la prueba para un tamaño publicado en un checkpoint.",
        "tree-size-out-of-range",
    )


async def inclusion_proof(conn: Executor, leaf_index: int, tree_size: int) -> InclusionProof:
    """RFC 9162 §2.1.3.1 proof that leaf ``leaf_index`` is in the tree of ``tree_size`` leaves.

    Any historical ``tree_size`` up to the current size works (nodes never change). Raises
    :class:`ProofRequestError` (es-MX) for an index or size out of range.
    """
    if tree_size < 1:
        raise ProofRequestError(
            "El tamaño del árbol (tree_size) debe ser al menos 1.", "tree-size-out-of-range"
        )
    if not 0 <= leaf_index < tree_size:
        raise ProofRequestError(
            f"El índice de hoja {leaf_index} no está en un árbol de {tree_size} hojas: "
            f"debe ir de 0 a {tree_size - 1}.",
            "leaf-index-out-of-range",
        )
    ranges = inclusion_proof_ranges(leaf_index, tree_size)
    wanted = required_nodes(ranges)
    found, size = await _nodes_and_size(conn, wanted)
    if tree_size > size:
        raise _too_big(tree_size, size)
    _check_complete(wanted, found, tree_size)
    return InclusionProof(leaf_index, tree_size, tuple(assemble_proof(ranges, found)))


async def inclusion_proofs(
    conn: Executor, leaf_indices: Sequence[int], tree_size: int
) -> list[InclusionProof]:
    """Inclusion proofs for several leaves against one tree size, sharing one node read.

    For a citizen's activity page: twenty proofs against the latest checkpoint share their
    upper nodes, so one query (chunked at :data:`_MAX_NODES_PER_QUERY`) serves them all.
    """
    if tree_size < 1:
        raise ProofRequestError(
            "El tamaño del árbol (tree_size) debe ser al menos 1.", "tree-size-out-of-range"
        )
    ranges = []
    for leaf_index in leaf_indices:
        if not 0 <= leaf_index < tree_size:
            raise ProofRequestError(
                f"El índice de hoja {leaf_index} no está en un árbol de {tree_size} hojas: "
                f"debe ir de 0 a {tree_size - 1}.",
                "leaf-index-out-of-range",
            )
        ranges.append(inclusion_proof_ranges(leaf_index, tree_size))
    wanted = required_nodes(r for rs in ranges for r in rs)
    found: dict[Node, bytes] = {}
    size = 0
    for start in range(0, max(1, len(wanted)), _MAX_NODES_PER_QUERY):
        chunk, size = await _nodes_and_size(conn, wanted[start : start + _MAX_NODES_PER_QUERY])
        found.update(chunk)
    if tree_size > size:
        raise _too_big(tree_size, size)
    _check_complete(wanted, found, tree_size)
    return [
        InclusionProof(i, tree_size, tuple(assemble_proof(r, found)))
        for i, r in zip(leaf_indices, ranges, strict=True)
    ]


async def consistency_proof(conn: Executor, first: int, second: int) -> ConsistencyProof:
    """RFC 9162 §2.1.4.1 proof that the tree of ``second`` leaves extends that of ``first``.

    ``first == 0`` and ``first == second`` give an empty proof (nothing to prove); otherwise
    ``0 < first < second <= current size``. Raises :class:`ProofRequestError` (es-MX).
    """
    if first < 0 or second < first:
        raise ProofRequestError(
            f"No hay prueba de consistencia de {first} a {second} hojas: se necesita "
            "0 ≤ first ≤ second.",
            "invalid-range",
        )
    ranges = consistency_proof_ranges(first, second)
    wanted = required_nodes(ranges)
    found, size = await _nodes_and_size(conn, wanted)
    if second > size:
        raise _too_big(second, size)
    _check_complete(wanted, found, second)
    return ConsistencyProof(first, second, tuple(assemble_proof(ranges, found)))


# ---------------------------------------------------------------------------------------------
# Event queries (citizens' activity, regulators' search)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An integrated event: its leaf (exact bytes), index and the indexed columns."""

    leaf_index: int
    leaf: bytes
    type: str
    at: datetime
    subject: str | None
    consumer: str | None
    purpose: str | None
    legal_basis: str | None
    outcome: str | None

    def event(self) -> LedgerEvent:
        """All fields, parsed from the leaf (which is the authority, not the columns)."""
        return LedgerEvent.from_leaf(self.leaf)

    def to_json(self) -> dict[str, Any]:
        """``{leaf_index, leaf (base64)}`` plus the decoded event body, for API responses."""
        return {
            "leaf_index": self.leaf_index,
            "leaf": _b64(self.leaf),
            "event": json.loads(self.leaf),
        }


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page, newest first; pass ``next_before`` as ``before`` to get the next one."""

    items: list[EventRecord]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Regulator filters; ``None`` means "any". ``since`` inclusive, ``until`` exclusive."""

    consumer: str | None = None
    type: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    subject: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for name in ("consumer", "type", "purpose", "legal_basis", "subject", "outcome"):
            value = getattr(self, name)
            if value is not None:
                out.append(leaves.c[name] == value)
        if self.since is not None:
            out.append(leaves.c.at >= self.since)
        if self.until is not None:
            out.append(leaves.c.at < self.until)
        return out


_RECORD_COLUMNS = (
    leaves.c.leaf_index,
    leaves.c.leaf,
    leaves.c.type,
    leaves.c.at,
    leaves.c.subject,
    leaves.c.consumer,
    leaves.c.purpose,
    leaves.c.legal_basis,
    leaves.c.outcome,
)


async def _page(
    conn: Executor,
    clauses: list[ColumnElement[bool]],
    limit: int,
    before: int | None,
    after: int | None,
) -> EventPage:
    limit = max(1, min(limit, MAX_PAGE))
    if before is not None:
        clauses.append(leaves.c.leaf_index < before)
    if after is not None:
        clauses.append(leaves.c.leaf_index > after)
    stmt = (
        select(*_RECORD_COLUMNS)
        .where(*clauses)
        .order_by(leaves.c.leaf_index.desc())
        .limit(limit + 1)
    )
    rows = (await conn.execute(stmt)).all()
    items = [
        EventRecord(int(r[0]), bytes(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8])
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return EventPage(items, items[-1].leaf_index if more else None)


async def events_for_subject(
    conn: Executor,
    subject: str,
    *,
    limit: int = 20,
    before: int | None = None,
    after: int | None = None,
) -> EventPage:
    """A citizen's events, newest first.

    ``before`` pages back (cursor = ``next_before``); ``after`` is delta sync: only events
    with a larger leaf index than the client already holds.
    """
    return await _page(conn, [leaves.c.subject == subject], limit, before, after)


async def query_events(
    conn: Executor,
    filters: EventFilter,
    *,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
) -> EventPage:
    """Regulators' search (``GET /api/v1/regulator/events``), newest first, paged."""
    return await _page(conn, filters.clauses(), limit, before, after)


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Counts for ``GET /api/v1/regulator/stats``; ``None`` keys are reported as ``"-"``."""

    total: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_consumer: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_legal_basis: dict[str, int] = field(default_factory=dict)
    per_day: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_type": self.by_type,
            "by_consumer": self.by_consumer,
            "by_outcome": self.by_outcome,
            "by_legal_basis": self.by_legal_basis,
            "per_day": self.per_day,
        }


def _day(dialect: str) -> ColumnElement[str]:
    """UTC calendar day of ``at`` as ``YYYY-MM-DD`` on either backend."""
    if dialect == "postgresql":
        return type_coerce(func.to_char(func.timezone("UTC", leaves.c.at), "YYYY-MM-DD"), String)
    return type_coerce(func.substr(type_coerce(leaves.c.at, String), 1, 10), String)


async def stats(conn: Executor, filters: EventFilter | None = None) -> LedgerStats:
    """Counts by type, consumer, outcome, legal basis and UTC day, under ``filters``."""
    clauses = (filters or EventFilter()).clauses()
    dialect = await dialect_name(conn)

    async def grouped(key: ColumnElement[Any]) -> dict[str, int]:
        stmt = select(key, func.count()).where(*clauses).group_by(key).order_by(key)
        return {("-" if k is None else str(k)): int(n) for k, n in await conn.execute(stmt)}

    total = (await conn.execute(select(func.count()).select_from(leaves).where(*clauses))).scalar()
    return LedgerStats(
        total=int(total or 0),
        by_type=await grouped(leaves.c.type),
        by_consumer=await grouped(leaves.c.consumer),
        by_outcome=await grouped(leaves.c.outcome),
        by_legal_basis=await grouped(leaves.c.legal_basis),
        per_day=await grouped(_day(dialect)),
    )


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportedLeaf:
    """One export line: ``{"leaf":"<base64>","leaf_index":N}`` (JSON Lines)."""

    leaf_index: int
    leaf: bytes

    def to_json(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "leaf": _b64(self.leaf)}

    def json_line(self) -> bytes:
        """The line as streamed by ``GET /api/v1/regulator/export`` (newline included)."""
        return b'{"leaf":"%s","leaf_index":%d}\n' % (base64.b64encode(self.leaf), self.leaf_index)


async def export_leaves(
    engine: AsyncEngine,
    *,
    tree_size: int | None = None,
    start: int = 0,
    batch_size: int = 5000,
) -> AsyncIterator[ExportedLeaf]:
    """Stream leaves ``[start, tree_size)`` in index order with bounded memory.

    ``tree_size`` defaults to the latest checkpoint's size, so the export can be verified
    against that checkpoint (``carpeta ledger verify``); a size beyond the current tree raises
    :class:`ProofRequestError` before anything is streamed. Leaves never change, so reading in
    short keyset-paged transactions is as consistent as one long snapshot.
    """
    async with engine.connect() as conn:
        if tree_size is None:
            latest = await latest_checkpoint(conn)
            tree_size = 0 if latest is None else latest.size
        elif tree_size > (size := await current_size(conn)):
            raise _too_big(tree_size, size)
    position = max(0, start)
    while position < tree_size:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(leaves.c.leaf_index, leaves.c.leaf)
                .where(leaves.c.leaf_index >= position, leaves.c.leaf_index < tree_size)
                .order_by(leaves.c.leaf_index)
                .limit(batch_size)
            )
            rows = result.all()
        if not rows:
            raise LedgerIntegrityError(f"leaves missing from index {position}")
        for index, leaf in rows:
            yield ExportedLeaf(int(index), bytes(leaf))
        position = int(rows[-1][0]) + 1
