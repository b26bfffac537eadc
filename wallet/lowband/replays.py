"""Storage of idempotent responses (``idempotency_records``), on SQLite and PostgreSQL.

Each step is its own short transaction, never held across the handler: claiming a key commits
an "in flight" row at once, so a concurrent duplicate sees it (409) instead of running the
action twice; the handler then runs in its own transaction; the outcome is written afterwards.
An in-flight row carries a lease (``locked_until``): if the process dies mid-request the key
becomes usable again once the lease ends instead of answering 409 for a day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wallet.lowband.dialects import upsert_insert
from wallet.lowband.tables import idempotency_records as records
from wallet.problems import ApiProblem

_headers_encode = msgspec.json.Encoder().encode
_headers_decode = msgspec.json.Decoder(list[tuple[str, str]]).decode


class KeyReused(ApiProblem):
    def __init__(self) -> None:
        super().__init__(
            422,
            "idempotency-key-reused",
            "Esta clave de idempotencia ya se usó con otra solicitud.",
            "Usa una clave nueva para cada operación distinta.",
        )


class KeyInFlight(ApiProblem):
    def __init__(self) -> None:
        super().__init__(
            409,
            "idempotency-key-in-flight",
            "Una solicitud con esta clave de idempotencia todavía está en proceso.",
            "Espera la respuesta de la primera solicitud y vuelve a intentar.",
            headers={"Retry-After": "1"},
        )


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Claimed:
    """The caller owns the key now: run the request, then :meth:`ReplayStore.complete` it."""


CLAIMED = Claimed()


class ReplayStore:
    """Claim, complete, release and purge idempotency records."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime],
        ttl: timedelta,
        lease: timedelta,
    ) -> None:
        self.sessions = sessions
        self.now = now
        self.ttl = ttl
        self.lease = lease

    async def claim(self, record_id: str, fingerprint: str) -> Claimed | StoredResponse:
        """Take the key, or say why not: replay (done), 409 (in flight), 422 (other request)."""
        now = self.now()
        for _ in range(3):
            async with self.sessions() as session, session.begin():
                inserted = await session.execute(
                    upsert_insert(session, records)
                    .values(
                        id=record_id,
                        fingerprint=fingerprint,
                        created_at=now,
                        locked_until=now + self.lease,
                        expires_at=now + self.ttl,
                    )
                    .on_conflict_do_nothing(index_elements=[records.c.id])
                    .returning(records.c.id)
                )
                if inserted.first() is not None:
                    return CLAIMED
                row = (
                    await session.execute(select(records).where(records.c.id == record_id))
                ).first()
                if row is None:
                    continue  # purged between our two statements
                if row.expires_at <= now:
                    await session.execute(
                        delete(records).where(
                            records.c.id == record_id, records.c.expires_at <= now
                        )
                    )
                    continue
                if row.fingerprint != fingerprint:
                    raise KeyReused()
                if row.status is not None:
                    return StoredResponse(
                        status=row.status,
                        headers=list(_headers_decode(row.headers or "[]")),
                        body=row.body or b"",
                    )
                if row.locked_until > now:
                    raise KeyInFlight()
                taken = await session.execute(
                    update(records)
                    .where(
                        records.c.id == record_id,
                        records.c.status.is_(None),
                        records.c.locked_until == row.locked_until,
                    )
                    .values(locked_until=now + self.lease, expires_at=now + self.ttl)
                    .returning(records.c.id)
                )
                if taken.first() is not None:
                    return CLAIMED  # the previous holder's lease ran out (crashed?)
                raise KeyInFlight()
        raise KeyInFlight()

    async def complete(
        self, record_id: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """Keep the response for replays until ``ttl`` after it was produced."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(records)
                .where(records.c.id == record_id)
                .values(
                    status=status,
                    headers=_headers_encode(headers).decode(),
                    body=body,
                    expires_at=self.now() + self.ttl,
                )
            )

    async def release(self, record_id: str) -> None:
        """Forget an in-flight claim (the request failed or can't be replayed): retry runs it."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(records).where(records.c.id == record_id, records.c.status.is_(None))
            )


async def purge_idempotency_records(session: AsyncSession, now: datetime) -> int:
    """Delete expired records (run it now and then; the caller commits); returns how many."""
    result = await session.execute(delete(records).where(records.c.expires_at <= now))
    return int(cast("CursorResult[Any]", result).rowcount)
