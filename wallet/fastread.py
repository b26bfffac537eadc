"""Tiny indexed reads on the event loop, for the embedded SQLite mode.

A phone opens the app and asks for its dashboard counts: seven index lookups that SQLite
answers in tens of microseconds. Through the async driver each read costs a thread hop, a
pooled connection and a transaction — over a millisecond. In WAL mode a reader never blocks
and is never blocked by the writer, so a read-only connection used directly on the event loop
serves these reads at their real cost. PostgreSQL keeps the async path (its driver is already
native async).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import make_url


class SqliteReads:
    """One read-only connection per process, autocommit: every statement sees the latest
    committed data. Only for statements that touch a few index pages."""

    def __init__(self, database_url: str) -> None:
        self.path = make_url(database_url).database or ""
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA query_only = ON")
            connection.execute("PRAGMA busy_timeout = 2000")
            self._connection = connection
        return self._connection

    def one(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        row = self._connect().execute(sql, dict(params)).fetchone()
        return tuple(row) if row is not None else ()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
