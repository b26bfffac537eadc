"""Database engine and migrations, the same code for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; busy_timeout queues writers instead of failing.

    The driver's own transaction handling is switched off so that :func:`_sqlite_begin`
    decides how each transaction starts.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Writers start with ``BEGIN IMMEDIATE``: they queue for the write lock up front.

    A deferred transaction that reads first and writes later can fail with SQLITE_BUSY when
    another writer committed in between (WAL snapshots cannot be upgraded), and busy_timeout
    does not help there. Readers keep plain deferred transactions and never block writers.
    """
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "carpeta_write"


def is_sqlite_file(url: str) -> bool:
    """SQLite on a file (not in memory): other connections can open the same database."""
    database = make_url(url).database
    return is_sqlite(url) and database is not None and database not in {"", ":memory:"}


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; ``hide_parameters`` keeps CURPs and tokens out of error messages."""
    if is_sqlite(url):
        database = make_url(url).database
        in_memory = not is_sqlite_file(url)
        if database is not None and not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Enough pooled connections for a worker's concurrent requests: opening one costs a
        # thread, a connect and the pragmas (~1 ms), far too much to do per request. (An
        # in-memory database has a single static connection and no pool to size.)
        pool = {} if in_memory else {"pool_size": 32, "max_overflow": 32}
        engine = create_async_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 10}, **pool
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
    )


def session_factory(
    engine: AsyncEngine, *, write: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading, or (``write=True``) for units of work that change data."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; call from a thread inside an event loop).

    PostgreSQL serialises migrators with an advisory lock (see env.py); for a SQLite file a
    lock file beside it does the same for workers starting together.
    """
    database = make_url(url).database if is_sqlite(url) else None
    if not database or database == ":memory:":
        command.upgrade(alembic_config(url), revision)
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
