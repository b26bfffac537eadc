"""Fixed-window rate limits whose counters live in the database.

Several workers (or hosts) share one database, so an in-process counter would multiply the
allowance by the number of processes. One upsert per check keeps it to a single round trip.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import Insert, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.errors import RateLimited
from eidentity.models import RateCounter


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    max_events: int
    window_seconds: int


class RateLimiter:
    """Counts events per bucket; bucket keys are HMACed so no CURP or address is stored."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _bucket(self, limit: Limit, key: str) -> str:
        digest = hmac.new(self._secret, f"{limit.name}\x00{key}".encode(), hashlib.sha256)
        return f"{limit.name}:{digest.hexdigest()[:48]}"

    async def hit(self, session: AsyncSession, limit: Limit, key: str, now: float) -> None:
        """Count one event; raise :class:`RateLimited` once the window's allowance is spent."""
        window = int(now) // limit.window_seconds * limit.window_seconds
        bucket = self._bucket(limit, key)
        values = {"bucket": bucket, "window_start": window, "count": 1}
        keys = [RateCounter.bucket, RateCounter.window_start]
        bump = {"count": RateCounter.count + 1}
        upsert: Insert
        if session.get_bind().dialect.name == "postgresql":
            pg = postgresql.insert(RateCounter).values(**values)
            upsert = pg.on_conflict_do_update(index_elements=keys, set_=bump)
        else:
            lite = sqlite.insert(RateCounter).values(**values)
            upsert = lite.on_conflict_do_update(index_elements=keys, set_=bump)
        result = await session.execute(upsert.returning(RateCounter.count))
        count = result.scalar_one()
        if count > limit.max_events:
            retry_after = window + limit.window_seconds - int(now)
            raise RateLimited(retry_after)

    @staticmethod
    async def purge(session: AsyncSession, older_than: float) -> int:
        result = await session.execute(
            delete(RateCounter).where(RateCounter.window_start < int(older_than))
        )
        return int(getattr(result, "rowcount", 0) or 0)
