"""The replay cache of client-assertion ``jti`` values, shared by every worker through the DB.

RFC 7523 §3 lets the server refuse a ``jti`` it has already seen while the assertion could
still be accepted. The primary key (client_id, jti hash) makes the database the arbiter: of two
concurrent requests carrying the same assertion, the second one's insert finds the first's row
and loses, whichever worker or host it ran on.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Insert, String, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from eidentity.dbtypes import UTCDateTime
from eidentity.models import IdentityBase

CLIENT_ID_MAX = 200


class AssertionJti(IdentityBase):
    """One used assertion. Only the SHA-256 of the ``jti`` is kept: bounded size, no echo of
    client-chosen text."""

    __tablename__ = "oauth_assertion_jtis"

    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_MAX), primary_key=True)
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def jti_hash(jti: str) -> str:
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()


async def use_jti(
    session: AsyncSession, client_id: str, jti: str, expires_at: datetime, now: datetime
) -> bool:
    """Record ``jti`` as used until ``expires_at``; ``False`` if it is still in use (a replay).

    A row whose time has passed is taken over rather than refused: once the assertion that used
    a ``jti`` can no longer be accepted, the ``jti`` is free again, whether or not a purge has
    run yet. One statement, so the check and the write cannot be split by another worker.
    """
    values = {"client_id": client_id, "jti_hash": jti_hash(jti), "expires_at": expires_at}
    keys = [AssertionJti.client_id, AssertionJti.jti_hash]
    takeover = {"expires_at": expires_at}
    stale = AssertionJti.expires_at <= now
    upsert: Insert
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(AssertionJti).values(**values)
        upsert = pg.on_conflict_do_update(index_elements=keys, set_=takeover, where=stale)
    else:
        lite = sqlite.insert(AssertionJti).values(**values)
        upsert = lite.on_conflict_do_update(index_elements=keys, set_=takeover, where=stale)
    result = await session.execute(upsert.returning(AssertionJti.client_id))
    return result.first() is not None


async def purge_expired(session: AsyncSession, now: datetime, client_id: str | None = None) -> int:
    """Delete rows whose assertion can no longer be accepted (all clients, or one); row count."""
    statement = delete(AssertionJti).where(AssertionJti.expires_at <= now)
    if client_id is not None:
        statement = statement.where(AssertionJti.client_id == client_id)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
