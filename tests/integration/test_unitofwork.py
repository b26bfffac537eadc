"""Plain-SQL units of work on a real SQLite file: timestamps exactly as the ORM writes them,
group commit with per-unit rollback, another process's write lock waited for without blocking
the loop, and a clear 503 when the database stays locked."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
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
from wallet.unitofwork import AlchemyTransactions, Sql, SqliteWriter, Tx, sqlite_stamp

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
IDS = Sql("SELECT id FROM stamps ORDER BY id")


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}"
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    return url


def _path(url: str) -> str:
    path = make_url(url).database
    assert path is not None
    return path


async def _count(writer: SqliteWriter) -> int:
    async def count(tx: Tx) -> int:
        row = await tx.one(COUNT, {})
        assert row is not None
        return int(row[0])

    return await writer.run(count)


def _insert(row_id: int, fail: bool = False) -> Callable[[Tx], Awaitable[int]]:
    async def work(tx: Tx) -> int:
        await tx.run(INSERT, {"id": row_id, "at": tx.stamp(datetime.now(UTC))})
        if fail:
            raise RuntimeError(f"unit {row_id} failed after writing")
        return row_id

    return work


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

        async def unit(tx: Tx) -> None:
            await tx.run(INSERT, {"id": 2, "at": tx.stamp(moment)})
            row = await tx.one(READ, {"id": 1})
            assert row is not None and tx.instant(row[0]) == moment

        await writer.run(unit)
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


async def test_units_of_one_turn_commit_together_and_a_failing_one_alone_rolls_back(
    database: str,
) -> None:
    writer = SqliteWriter(database, asyncio.Lock())
    results = await asyncio.gather(
        *(writer.run(_insert(i, fail=(i == 3))) for i in range(1, 6)),
        return_exceptions=True,
    )
    assert results[:2] == [1, 2] and results[3:] == [4, 5]
    assert isinstance(results[2], RuntimeError) and "unit 3" in str(results[2])

    async def ids(tx: Tx) -> list[int]:
        return [r[0] for r in await tx.all(IDS, {})]

    assert await writer.run(ids) == [1, 2, 4, 5]
    # A later unit is not poisoned by the earlier failure.
    assert await writer.run(_insert(6)) == 6
    assert await _count(writer) == 5
    writer.close()


async def test_callers_hear_back_only_after_the_commit(database: str) -> None:
    """Another connection already sees the row when the caller gets its answer."""
    writer = SqliteWriter(database, asyncio.Lock())
    outside = sqlite3.connect(_path(database))
    assert await writer.run(_insert(1)) == 1
    assert outside.execute("SELECT count(*) FROM stamps").fetchone() == (1,)
    outside.close()
    writer.close()


async def test_another_process_s_write_lock_is_waited_for_without_blocking_the_loop(
    database: str,
) -> None:
    other = sqlite3.connect(_path(database), isolation_level=None, check_same_thread=False)
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
    await writer.run(_insert(2))
    waited = time.monotonic() - started
    await committer
    tick_task.cancel()
    # It waited for the other writer, and the loop kept serving meanwhile.
    assert waited >= 0.25
    assert ticks >= 10
    assert await _count(writer) == 2
    writer.close()
    other.close()


async def test_a_database_that_stays_locked_gets_a_clear_503(database: str) -> None:
    other = sqlite3.connect(_path(database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writer = SqliteWriter(database, asyncio.Lock(), patience=0.2)
    with pytest.raises(ApiProblem) as caught:
        await writer.run(_insert(1))
    assert (caught.value.status, caught.value.slug) == (503, "busy")
    assert caught.value.headers == {"Retry-After": "2"}
    other.execute("ROLLBACK")
    assert await _count(writer) == 0
    writer.close()
    other.close()


async def test_the_orm_adapter_runs_the_same_statements(database: str) -> None:
    engine = db.create_engine(database)
    transactions = AlchemyTransactions(db.session_factory(engine, write=True), asyncio.Lock())
    moment = datetime(2026, 11, 27, 12, 0, 1, 5, tzinfo=UTC)

    async def write(tx: Tx) -> None:
        assert tx.locks_rows is False  # SQLite: the database lock serialises writers
        await tx.run(INSERT, {"id": 7, "at": tx.stamp(moment)})

    async def read(tx: Tx) -> None:
        row = await tx.one(READ, {"id": 7})
        assert row is not None and tx.instant(row[0]) == moment
        assert await tx.all(COUNT, {}) == [(1,)]

    await transactions.run(write)
    await transactions.run(read)
    with pytest.raises(RuntimeError):
        await transactions.run(_insert(8, fail=True))
    await transactions.run(read)  # the failed unit left nothing behind
    await engine.dispose()
