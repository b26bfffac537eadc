"""Housekeeping: forget sign-in state that can no longer matter.

Expired challenges and old rate-limit windows are useless after a day; keeping them would only
grow the tables (and keep metadata about sign-in attempts longer than needed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.models import EfirmaChallenge, OtpChallenge, RefreshToken, SessionFamily
from eidentity.ratelimit import RateLimiter

RETENTION = timedelta(days=1)


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    cutoff = now - RETENTION
    removed = 0
    for statement in (
        delete(OtpChallenge).where(OtpChallenge.expires_at < cutoff),
        delete(EfirmaChallenge).where(EfirmaChallenge.expires_at < cutoff),
        delete(RefreshToken).where(RefreshToken.expires_at < cutoff),
        delete(SessionFamily).where(SessionFamily.expires_at < cutoff),
    ):
        result = await session.execute(statement)
        removed += int(getattr(result, "rowcount", 0) or 0)
    removed += await RateLimiter.purge(session, cutoff.timestamp())
    await session.commit()
    return removed
