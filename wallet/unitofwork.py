"""Hot units of work written once in plain SQL and run on either database.

The agency data request is the busiest write of the service: about ten short statements
(decide, read records, log the use, queue the ledger event) in one transaction. Through the
ORM and the async SQLite driver each statement costs a worker-thread hop and ~0.4 ms of
Python, while SQLite itself answers in tens of microseconds. So such units of work are written
against :class:`Tx` — three awaitable calls taking portable SQL with ``:named`` parameters —
and run:

* embedded (SQLite): on one plain ``sqlite3`` write connection, directly on the event loop,
  inside the process's write lock (:class:`SqliteWriter`). The awaits never suspend, so a unit
  of work is one uninterrupted stretch of the loop; another *process* holding the database's
  write lock is waited for asynchronously (``BEGIN IMMEDIATE`` is retried with back-off) and
  never by sleeping in SQLite's busy handler on the loop;
* server mode (PostgreSQL): on an ``AsyncSession`` with row locks (:class:`AlchemyTx`).

The same statements, the same rules, two thin adapters, tested on both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import TextClause, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wallet.problems import ApiProblem

T = TypeVar("T")
Row = tuple[Any, ...]
Params = Mapping[str, Any]


def busy() -> ApiProblem:
    """Another process kept the database locked for longer than we wait (nothing changed)."""
    return ApiProblem(
        503,
        "busy",
        "El servicio está ocupado. Intenta de nuevo en unos segundos.",
        "Otra operación tiene la base de datos; no se hizo ningún cambio.",
        headers={"Retry-After": "2"},
    )


class Sql:
    """A statement in portable SQL with ``:named`` parameters, prepared for both drivers."""

    __slots__ = ("clause", "text")

    def __init__(self, sql: str) -> None:
        self.text = sql
        self.clause: TextClause = text(sql)

    def __repr__(self) -> str:
        return f"Sql({self.text!r})"


class Tx(Protocol):
    """One open transaction. ``locks_rows``: whether ``FOR UPDATE`` means anything here
    (PostgreSQL); on SQLite the whole database is write-locked for the transaction."""

    locks_rows: bool

    async def one(self, sql: Sql, params: Params) -> Row | None: ...

    async def all(self, sql: Sql, params: Params) -> list[Row]: ...

    async def run(self, sql: Sql, params: Params) -> None: ...

    def stamp(self, moment: datetime) -> Any:
        """A timestamp parameter as ``UTCDateTime`` binds it on this database."""
        ...

    def instant(self, value: Any) -> datetime | None:
        """A timestamp column's value as an aware UTC datetime."""
        ...


Work = Callable[[Tx], Awaitable[T]]


class TxSource(Protocol):
    async def run(self, work: Work[T]) -> T:
        """``work`` inside one transaction: committed if it returns, rolled back if it raises."""
        ...


# -- SQLite ----------------------------------------------------------------------------------


def sqlite_stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (our ``UTCDateTime`` columns): UTC, no zone,
    six fractional digits. Plain-SQL writers must match it byte for byte, or comparisons and
    ordering against ORM-written rows would be wrong."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


class SqliteTx:
    """:class:`Tx` on a plain connection. Rows come back as the driver's tuples."""

    locks_rows = False

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def one(self, sql: Sql, params: Params) -> Row | None:
        row: Row | None = self._connection.execute(sql.text, params).fetchone()
        return row

    async def all(self, sql: Sql, params: Params) -> list[Row]:
        return self._connection.execute(sql.text, params).fetchall()

    async def run(self, sql: Sql, params: Params) -> None:
        self._connection.execute(sql.text, params)

    def stamp(self, moment: datetime) -> Any:
        return sqlite_stamp(moment)

    def instant(self, value: Any) -> datetime | None:
        if value is None:
            return None
        return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(exc)


class SqliteWriter:
    """The process's plain write connection for :class:`Tx` units of work (embedded mode).

    Group commit: units submitted during one turn of the event loop run back to back in one
    transaction and commit together; their callers are answered only after the commit, so
    nobody hears of a change that is not durable. One ``BEGIN``/``COMMIT`` and one write of
    each touched page then serve a whole burst of requests. If a unit raises, the batch is
    rolled back and each unit is run again on its own, so only the failing one fails: units
    must have no effects outside their transaction (they are re-run from scratch).

    ``lock`` is the process's SQLite write lock, shared with the ORM writers and the ledger
    sequencer, so inside one process nobody ever meets a busy database. The connection never
    waits in SQLite's busy handler (``busy_timeout = 0``): when another process holds the
    write lock, ``BEGIN IMMEDIATE`` is retried after an asynchronous sleep, for up to
    ``patience`` seconds, then the batch gets a 503 problem with nothing changed. WAL
    checkpoints are left to the other connections (which run in worker threads), so no
    checkpoint's I/O runs on the event loop.
    """

    def __init__(self, database_url: str, lock: asyncio.Lock, patience: float = 10.0) -> None:
        self.path = make_url(database_url).database or ""
        self.lock = lock
        self.patience = patience
        self._connection: sqlite3.Connection | None = None
        self._queue: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            for pragma in (
                "PRAGMA busy_timeout = 0",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA wal_autocheckpoint = 0",
            ):
                connection.execute(pragma)
            self._connection = connection
        return self._connection

    async def _begin(self, connection: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.patience
        pause = 0.0005
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() + pause > deadline:
                    raise busy() from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def run(self, work: Work[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        while self._queue:
            async with self.lock:
                batch, self._queue = self._queue, []
                try:
                    await self._flush(batch)
                except BaseException as exc:  # never leave a caller waiting
                    _fail(batch, exc)
                    raise

    async def _flush(self, batch: list[tuple[Work[Any], asyncio.Future[Any]]]) -> None:
        connection = self._connect()
        try:
            await self._begin(connection)
        except Exception as exc:
            _fail(batch, exc)
            return
        tx = SqliteTx(connection)
        values: list[Any] = []
        try:
            for work, _ in batch:
                values.append(await work(tx))
            connection.execute("COMMIT")
        except Exception as exc:
            self._rollback(connection)
            if len(batch) == 1:
                _fail(batch, exc)
                return
            # Nothing of the batch was kept: run each unit alone, so only the failing one
            # fails (units have no effects outside their transaction, so a rerun is safe).
            for item in batch:
                await self._flush([item])
            return
        except BaseException as exc:
            self._rollback(connection)
            _fail(batch, exc)
            raise
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)

    def _rollback(self, connection: sqlite3.Connection) -> None:
        """Undo the open transaction; a connection that cannot even do that is replaced."""
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


def _fail(batch: list[tuple[Work[Any], asyncio.Future[Any]]], exc: BaseException) -> None:
    error = exc if isinstance(exc, Exception) else RuntimeError("unit of work interrupted")
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


# -- SQLAlchemy (PostgreSQL) -----------------------------------------------------------------


class AlchemyTx:
    """:class:`Tx` on an ``AsyncSession``. Plain SQL carries no column types, so timestamps
    are bound and read the way ``UTCDateTime`` does it on the database at hand."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._sqlite = dialect == "sqlite"
        self.locks_rows = not self._sqlite

    async def one(self, sql: Sql, params: Params) -> Row | None:
        row = (await self._session.execute(sql.clause, dict(params))).first()
        return None if row is None else tuple(row)

    async def all(self, sql: Sql, params: Params) -> list[Row]:
        return [tuple(r) for r in await self._session.execute(sql.clause, dict(params))]

    async def run(self, sql: Sql, params: Params) -> None:
        await self._session.execute(sql.clause, dict(params))

    def stamp(self, moment: datetime) -> Any:
        return sqlite_stamp(moment) if self._sqlite else moment

    def instant(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class AlchemyTransactions:
    """:class:`Tx` over the write sessions (server mode, or SQLite in tests that want it)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], lock: asyncio.Lock | None
    ) -> None:
        self.sessions = sessions
        self.lock = lock

    async def run(self, work: Work[T]) -> T:
        async with write_session(self.sessions, self.lock) as session, session.begin():
            connection = await session.connection()
            return await work(AlchemyTx(session, connection.dialect.name))


@asynccontextmanager
async def write_session(
    sessions: async_sessionmaker[AsyncSession], lock: asyncio.Lock | None
) -> AsyncIterator[AsyncSession]:
    """An ORM write session, queued behind the process's SQLite write lock when there is one.

    The lock is not re-entrant: code holding such a session must not start a plain-SQL unit
    of work (:meth:`SqliteWriter.run` queues behind the same lock) — finish one, then the
    other, as the data release does for its rare preconditions."""
    if lock is None:
        async with sessions() as session:
            yield session
        return
    async with lock, sessions() as session:
        yield session
