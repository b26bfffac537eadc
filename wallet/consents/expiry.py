"""Consents lapse with time: a sweep turns every due one into ``expired``, with its event.

Decisions never rely on the sweep (they lapse what is due before deciding); the sweep makes
the citizen's list, the agency's status and the ledger say so without waiting for a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from consent.machine import REQUEST_TTL
from consent.storage import ConsentRow
from wallet.unitofwork import write_session

if TYPE_CHECKING:
    from wallet.services import Services


async def expire_due_consents(services: Services, batch: int = 200) -> int:
    """Lapse up to ``batch`` due consents; returns how many lapsed."""
    now = services.clock.now()
    async with write_session(services.sessions, services.write_lock) as session:
        rows = list(
            await session.scalars(
                select(ConsentRow)
                .where(
                    or_(
                        ConsentRow.status.in_(("active", "paused"))
                        & (ConsentRow.valid_until <= now),
                        (ConsentRow.status == "requested")
                        & (ConsentRow.created_at <= now - REQUEST_TTL),
                    ),
                )
                .order_by(ConsentRow.valid_until)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        before = {row.consent_id: row.status for row in rows}
        await services.consent_service.expire_due(session, rows, now)
        await session.commit()
        return sum(1 for row in rows if row.status != before[row.consent_id])
