"""``INSERT … ON CONFLICT`` for the two databases we run on (SQLite and PostgreSQL).

Both dialects have the same ``on_conflict_do_*`` API and ``RETURNING``; only the import differs.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_insert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """A dialect ``insert(table)`` that supports ``on_conflict_do_update/nothing``."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database {name!r} is not supported (SQLite or PostgreSQL)")
