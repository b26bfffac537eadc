"""The sequencer: the single writer that turns queued events into leaves and signed checkpoints.

One batch is one database transaction:

1. lock the state row *first* (PostgreSQL ``SELECT … FOR UPDATE``; SQLite an ``UPDATE`` of
   the row, which takes SQLite's write lock before anything is read, so two writers never
   both hold read snapshots and then deadlock upgrading them — ``SQLITE_BUSY``);
2. re-read size and root and check them against the in-memory frontier; if another process
   advanced the tree, reload the frontier from the stored nodes (and refuse to go on if the
   stored nodes do not reproduce the stored root: a tampered or corrupt tree is never
   extended or signed);
3. take the queued events ordered by id — *whatever* is there, never "ids after the last one
   seen", because concurrent producers commit ids out of order;
4. ``INSERT … SELECT`` the leaves (leaf index = size + row number in id order), insert every
   completed perfect node with one ``executemany``, delete exactly those queue rows, update
   the state, sign one checkpoint and store it;
5. commit once.

A crash anywhere before the commit loses nothing (the queue rows are still there) and leaves
no partial batch; after it, the whole batch and its checkpoint are durable together. Several
sequencers (workers, processes, hosts) may run: the row lock makes them take turns, and each
re-reads the state, so the tree never forks or skips an index.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.merkle import EMPTY_ROOT, CompactRange
from ledger.note import Checkpoint, NoteError, is_valid_key_name, sign_checkpoint
from ledger.storage import (
    EVENT_COLUMNS,
    STATE_ID,
    SignedCheckpoint,
    checkpoints,
    ensure_state,
    leaves,
    nodes,
    nodes_matching,
    queue,
    state,
)

__all__ = ["LedgerCorruptError", "Sequencer"]

log = logging.getLogger(__name__)

MAX_MERGE_DELAY = 2.0
"""SPEC: an event is in a signed checkpoint at most this many seconds after it commits."""


class LedgerCorruptError(RuntimeError):
    """The stored tree does not match its own state row: refuse to extend or sign it."""


def _now() -> datetime:
    return datetime.now(UTC)


_LEAF_COLUMNS = ("leaf_index", "queue_id", "leaf", *EVENT_COLUMNS)
_SELECT_QUEUE = select(queue.c.id, queue.c.leaf).order_by(queue.c.id)
_QUEUE_NOT_EMPTY = select(queue.c.id).limit(1)
_STATE_ROW = state.c.id == STATE_ID


#: Pause after a batch that was not full (see :meth:`Sequencer.run`).
DEFAULT_PACE = 0.25


class Sequencer:
    """Integrates queued events in batches and signs one checkpoint per batch.

    Lifecycle: ``await prepare()`` (optional: creates the state row and signs the empty-tree
    checkpoint so ``GET /ledger/checkpoint`` always has an answer), then either call
    ``await integrate_once()`` yourself or run ``await run(stop)`` as a background task and
    ``notify()`` it after committing an append to cut latency below the poll interval.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        signing_key: Ed25519PrivateKey,
        origin: str,
        key_name: str,
        *,
        max_batch: int = 10_000,
        max_delay: float = 0.5,
        linger: float = 0.005,
        pace: float | None = None,
        sqlite_cache_mib: int | None = 64,
        clock: Callable[[], datetime] = _now,
        writer_lock: asyncio.Lock | None = None,
    ) -> None:
        if not is_valid_key_name(key_name):
            raise NoteError(f"invalid signed-note key name {key_name!r}")
        Checkpoint(origin, 0, EMPTY_ROOT)  # validates the origin line
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if not 0 < max_delay <= MAX_MERGE_DELAY / 2:
            raise ValueError(f"max_delay must be in (0, {MAX_MERGE_DELAY / 2}] seconds")
        self.engine = engine
        self.origin = origin
        self.key_name = key_name
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.linger = linger
        pace = min(DEFAULT_PACE, max_delay) if pace is None else pace
        if not 0 <= pace <= max_delay:
            raise ValueError("pace must be in [0, max_delay] seconds")
        self.pace = pace
        # SQLite's default page cache (2 MiB) cannot hold the index pages a 10 000-row batch
        # touches in seven leaf indexes; 64 MiB makes batches ~40 % faster. Per connection,
        # allocated only as pages are used. None leaves the engine's setting alone.
        self._sqlite_cache = (
            None if sqlite_cache_mib is None else f"PRAGMA cache_size = -{sqlite_cache_mib * 1024}"
        )
        self._key = signing_key
        self._clock = clock
        # The host process's own queue for SQLite's single write lock, if it keeps one: taking
        # it around a batch means its other writers never meet a busy database.
        self._writer_lock = writer_lock
        self._compact: CompactRange | None = None
        self._prepared = False
        self._wake: asyncio.Event | None = None
        self.batches = 0
        """Batches this instance committed (for logs and tests)."""
        self.integrated = 0
        """Events this instance integrated."""

    # -- lifecycle --------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake :meth:`run` now (call from the sequencer's event loop, after a commit)."""
        if self._wake is not None:
            self._wake.set()

    async def prepare(self) -> SignedCheckpoint:
        """Create the state row if needed and make sure the current size has a checkpoint.

        Idempotent and safe to race with other sequencers; returns the latest checkpoint.
        """
        async with self._writing(), self.engine.begin() as conn:
            await ensure_state(conn)
        async with self._writing(), self.engine.begin() as conn:
            size, root = await self._lock(conn)
            row = (
                await conn.execute(
                    select(checkpoints.c.note, checkpoints.c.created_at).where(
                        checkpoints.c.tree_size == size
                    )
                )
            ).first()
            if row is not None:
                self._prepared = True
                return SignedCheckpoint.from_note(row.note, row.created_at)
            await self._frontier(conn, size, root)
            signed = await self._sign_and_store(conn, size, root)
        self._prepared = True
        return signed

    async def run(self, stop: asyncio.Event) -> None:
        """Integrate until ``stop`` is set: paced while there is work, else poll.

        The poll interval (``max_delay``, at most 1 s) bounds the merge delay of events
        appended by other processes; :meth:`notify` cuts it for local ones. Under steady load
        a batch that was not full is followed by a pause of ``pace`` seconds: a batch has a
        fixed cost (a dozen statements and a signature) that back-to-back batches of a few
        events would pay per event, taking CPU from the requests that append them. A full
        batch goes again at once. Errors (a lost
        database connection, a lock timeout) are logged and retried with backoff: the queue
        keeps the events meanwhile. :class:`LedgerCorruptError` stops the loop.
        """
        self._wake = asyncio.Event()
        stopping = asyncio.ensure_future(stop.wait())
        backoff = 0.05
        try:
            while not stop.is_set():
                try:
                    if not self._prepared:
                        await self.prepare()
                    before = self.integrated
                    signed = await self.integrate_once()
                    backoff = 0.05
                except LedgerCorruptError:
                    log.critical("ledger tree does not match its state; sequencer stopped")
                    raise
                except Exception:
                    log.exception("ledger sequencer batch failed; retrying in %.2fs", backoff)
                    await _wait_any(stopping, None, backoff)
                    backoff = min(backoff * 2, self.max_delay)
                    continue
                if signed is not None:
                    if self.integrated - before < self.max_batch and self.pace > 0:
                        await _wait_any(stopping, None, self.pace)
                    continue
                self._wake.clear()
                await _wait_any(stopping, self._wake, self.max_delay)
                if self._wake.is_set() and self.linger > 0 and not stop.is_set():
                    await asyncio.sleep(self.linger)  # let concurrent appends join the batch
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        lock = self._writer_lock
        return lock if lock is not None else contextlib.nullcontext()

    # -- one batch --------------------------------------------------------------------------

    async def integrate_once(self) -> SignedCheckpoint | None:
        """Integrate up to ``max_batch`` queued events; ``None`` if the queue was empty."""
        if not self._prepared:
            await self.prepare()
        async with self.engine.connect() as conn:  # lock-free peek: idle polls write nothing
            if (await conn.execute(_QUEUE_NOT_EMPTY)).first() is None:
                return None
        async with self.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            async with self._writing():
                signed, work, ids = await self._batch(conn, sqlite)
            if signed is None:
                return None
            self._compact = work
            self.batches += 1
            self.integrated += len(ids)
            if sqlite:
                # Checkpoint outside the writers' queue: a PASSIVE checkpoint never blocks
                # writers, so its copy and fsync no longer stall every other write of the
                # process (autocheckpoint, which runs inside COMMIT, is off for this batch).
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                await conn.commit()
        return signed

    async def _batch(
        self, conn: AsyncConnection, sqlite: bool
    ) -> tuple[SignedCheckpoint | None, CompactRange, list[int]]:
        """One batch under the writers' lock: lock the state, append, sign, commit."""
        if sqlite:
            if self._sqlite_cache is not None:
                await conn.exec_driver_sql(self._sqlite_cache)
            await conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
            await conn.commit()  # ends SQLAlchemy's autobegin; SQLite opened nothing
        await conn.begin()
        size, root = await self._lock(conn)
        compact = await self._frontier(conn, size, root)
        rows = (await conn.execute(_SELECT_QUEUE.limit(self.max_batch))).all()
        if not rows:
            await conn.rollback()
            return None, compact, []
        sha = hashlib.sha256
        ids = [r[0] for r in rows]
        work = compact.copy()
        completed = work.append_many([sha(b"\x00" + r[1]).digest() for r in rows])
        new_root = work.root()
        batch = self._batch_predicate(conn, ids)
        inserted = await conn.execute(_insert_leaves(size, batch))
        if inserted.rowcount != len(ids):
            # Impossible while the lock is honoured; roll back and let the caller retry.
            raise RuntimeError("queued events changed while the batch held the lock")
        await conn.exec_driver_sql(_insert_nodes_sql(conn.dialect.paramstyle), completed)
        await conn.execute(queue.delete().where(batch))
        await conn.execute(
            update(state)
            .where(_STATE_ROW)
            .values(size=work.size, root=new_root, updated_at=self._clock())
        )
        signed = await self._sign_and_store(conn, work.size, new_root)
        await conn.commit()
        return signed, work, ids

    async def _lock(self, conn: AsyncConnection) -> tuple[int, bytes]:
        """Take the single-writer lock on the state row, then read size and root under it."""
        if conn.dialect.name == "postgresql":
            stmt: Any = select(state.c.size, state.c.root).where(_STATE_ROW).with_for_update()
        else:
            # SQLite: the UPDATE is the transaction's first statement, so the write lock is
            # taken (waiting on busy_timeout) before any read snapshot exists.
            stmt = (
                update(state)
                .where(_STATE_ROW)
                .values(updated_at=self._clock())
                .returning(state.c.size, state.c.root)
            )
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise LedgerCorruptError("ledger_state row is missing (run prepare() first)")
        return int(row[0]), bytes(row[1])

    async def _frontier(self, conn: AsyncConnection, size: int, root: bytes) -> CompactRange:
        """The frontier for ``size``: ours if still current, else reloaded from stored nodes."""
        compact = self._compact
        if compact is not None and compact.size == size and compact.root() == root:
            return compact
        wanted = CompactRange.frontier_nodes(size)
        found: dict[tuple[int, int], bytes] = {}
        if wanted:
            result = await conn.execute(
                select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(nodes_matching(wanted))
            )
            found = {(lv, ix): bytes(h) for lv, ix, h in result}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise LedgerCorruptError(f"frontier nodes missing for size {size}: {missing}")
        compact = CompactRange(size, [found[n] for n in wanted])
        if compact.root() != root:
            raise LedgerCorruptError(f"stored nodes do not reproduce the root of size {size}")
        if self._compact is not None:
            log.info("ledger frontier reloaded at size %d (another sequencer advanced)", size)
        self._compact = compact
        return compact

    @staticmethod
    def _batch_predicate(conn: AsyncConnection, ids: Sequence[int]) -> ColumnElement[bool]:
        """Exactly the queue rows read in this batch.

        SQLite: the write lock excludes every other writer until commit and ``ids`` are the
        smallest visible ids, so ``id <= max`` is exactly them (and a cheap range). PostgreSQL:
        producers keep committing meanwhile, possibly with smaller ids, so name them.
        """
        if conn.dialect.name == "sqlite":
            return queue.c.id <= ids[-1]
        if conn.dialect.name == "postgresql":
            return queue.c.id == any_(bindparam("batch_ids", list(ids), type_=ARRAY(BigInteger)))
        return queue.c.id.in_(list(ids))

    async def _sign_and_store(
        self, conn: AsyncConnection, size: int, root: bytes
    ) -> SignedCheckpoint:
        checkpoint = Checkpoint(self.origin, size, root)
        note = sign_checkpoint(checkpoint, self.key_name, self._key)
        created_at = self._clock()
        await conn.execute(
            checkpoints.insert().values(tree_size=size, root=root, note=note, created_at=created_at)
        )
        return SignedCheckpoint(checkpoint, note, created_at)


def _insert_nodes_sql(paramstyle: str) -> str:
    """Driver-level ``INSERT INTO ledger_nodes`` for ``executemany`` with plain tuples.

    Core ``executemany`` with dicts costs ~4 µs of parameter processing per row — three times
    what SQLite needs to insert it — and a batch completes about two nodes per leaf, so the
    node rows skip that layer; the columns are plain integers and bytes, nothing to convert.
    """
    marks = {
        "qmark": ("?", "?", "?"),
        "numeric_dollar": ("$1", "$2", "$3"),
        "numeric": (":1", ":2", ":3"),
        "format": ("%s", "%s", "%s"),
    }.get(paramstyle)
    if marks is None:
        raise NotImplementedError(f"unsupported DB-API paramstyle {paramstyle!r}")
    # Constant text: only the placeholder spelling varies, never a value.
    return f"INSERT INTO ledger_nodes (level, idx, hash) VALUES ({', '.join(marks)})"  # noqa: S608


def _insert_leaves(size: int, batch: ColumnElement[bool]) -> Any:
    """``INSERT INTO leaves SELECT size + row_number() - 1, … FROM queue WHERE batch``.

    Copies the event columns inside the database (no round trip through Python), numbering
    rows in queue-id order — the order the leaf hashes were appended to the frontier.
    """
    position = func.row_number().over(order_by=queue.c.id) + bindparam(
        "base", size - 1, type_=BigInteger
    )
    source = select(
        position, queue.c.id, queue.c.leaf, *(queue.c[name] for name in EVENT_COLUMNS)
    ).where(batch)
    return leaves.insert().from_select(list(_LEAF_COLUMNS), source)


async def _wait_any(
    stopping: asyncio.Future[Any], wake: asyncio.Event | None, seconds: float
) -> None:
    """Sleep until ``stopping`` completes, ``wake`` is set, or ``seconds`` pass."""
    waiters: set[asyncio.Future[Any]] = {stopping}
    wake_task = asyncio.ensure_future(wake.wait()) if wake is not None else None
    if wake_task is not None:
        waiters.add(wake_task)
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if wake_task is not None and not wake_task.done():
            wake_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wake_task
