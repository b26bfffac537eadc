"""Plain-SQL units of work on a real SQLite file: timestamps exactly as the ORM writes them,
another process's write lock waited for without blocking the loop, rollback on error, and a
clear 503 when the database stays locked."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import make_url

from eidentity.dbtypes import UTCDateTime
from tests.conftest import run_async
from wallet import db
from wallet.problems import ApiProblem
from wallet.unitofwork import AlchemyTransactions, Sql, SqliteWriter, sqlite_stamp

metadata = MetaData()
stamps = Table(
    "stamps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
)
INSERT = Sql("INSERT INTO stamps (id, at) VALUES (:id, :at)")
READ = Sql("SELECT at FROM stamps WHERE id = :id")
COUNT = Sql("SELECT count(*) FROM stamps")


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}"
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    return url


instants = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
)


@given(moment=instants)
def test_plain_sql_stamps_are_the_orm_s_stamps(
    tmp_path_factory: pytest.TempPathFactory, moment: datetime
) -> None:
    """A row the ORM writes and a row the plain writer writes hold the same text, and each
    reads back through the other as the same instant."""
    path = tmp_path_factory.mktemp("stamps") / "s.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def work() -> None:
        engine = db.create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(stamps).values(id=1, at=moment))
        writer = SqliteWriter(url, asyncio.Lock())
        async with writer.transaction() as tx:
            await tx.run(INSERT, {"id": 2, "at": moment})
            row = await tx.one(READ, {"id": 1})
            assert row is not None and tx.instant(row[0]) == moment
        writer.close()
        async with engine.connect() as conn:
            read = (await conn.execute(select(stamps.c.at).order_by(stamps.c.id))).scalars()
            assert list(read) == [moment, moment]
        await engine.dispose()
        raw = sqlite3.connect(path)
        texts = [r[0] for r in raw.execute("SELECT at FROM stamps ORDER BY id")]
        raw.close()
        assert texts == [sqlite_stamp(moment)] * 2

    run_async(work)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_stamp(datetime(2026, 1, 1))


async def test_an_error_rolls_the_whole_unit_back(database: str) -> None:
    writer = SqliteWriter(database, asyncio.Lock())

    async def half_done() -> None:
        async with writer.transaction() as tx:
            await tx.run(INSERT, {"id": 1, "at": datetime.now(UTC)})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await half_done()
    async with writer.transaction() as tx:
        assert await tx.one(COUNT, {}) == (0,)
    writer.close()


async def test_another_process_s_write_lock_is_waited_for_without_blocking_the_loop(
    database: str,
) -> None:
    path = make_url(database).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO stamps (id, at) VALUES (1, '2026-01-01 00:00:00.000000')")
    writer = SqliteWriter(database, asyncio.Lock())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def other_commits_later() -> None:
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    tick_task = asyncio.create_task(ticker())
    committer = asyncio.create_task(other_commits_later())
    started = time.monotonic()
    async with writer.transaction() as tx:
        waited = time.monotonic() - started
        await tx.run(INSERT, {"id": 2, "at": datetime.now(UTC)})
    await committer
    tick_task.cancel()
    # It waited for the other writer, and the loop kept serving meanwhile.
    assert waited >= 0.25
    assert ticks >= 10
    async with writer.transaction() as tx:
        assert await tx.one(COUNT, {}) == (2,)
    writer.close()
    other.close()


async def test_a_database_that_stays_locked_gets_a_clear_503(database: str) -> None:
    path = make_url(database).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writer = SqliteWriter(database, asyncio.Lock(), patience=0.2)

    async def write() -> None:
        async with writer.transaction() as tx:
            await tx.run(INSERT, {"id": 1, "at": datetime.now(UTC)})

    with pytest.raises(ApiProblem) as caught:
        await write()
    assert (caught.value.status, caught.value.slug) == (503, "busy")
    other.execute("ROLLBACK")
    async with writer.transaction() as tx:
        assert await tx.one(COUNT, {}) == (0,)
    writer.close()
    other.close()


async def test_the_orm_adapter_runs_the_same_statements(database: str) -> None:
    engine = db.create_engine(database)
    transactions = AlchemyTransactions(db.session_factory(engine, write=True), asyncio.Lock())
    moment = datetime(2026, 11, 27, 12, 0, 1, 5, tzinfo=UTC)
    async with transactions.transaction() as tx:
        assert tx.locks_rows is False  # SQLite: the database lock serialises writers
        await tx.run(INSERT, {"id": 7, "at": moment})
    async with transactions.transaction() as tx:
        row = await tx.one(READ, {"id": 7})
        assert row is not None and tx.instant(row[0]) == moment
        assert await tx.all(COUNT, {}) == [(1,)]
    await engine.dispose()
