"""Per-owner change sequence numbers: the ordering that makes ``?since=`` sync correct.

A delta-sync reader asks for "changes with ``change_seq`` greater than what I saw". That is only
safe if no change with a *smaller* number can become visible after one with a larger number
was read — otherwise the reader's cursor would already be past it and it would never be sent.

Database sequences or ``max(seq) + 1`` don't give that under concurrent writers: two
transactions take 7 and 8, the one with 8 commits first, a reader sees 8 and moves its cursor
to 8, then 7 commits — lost. So the number is taken from a counter row *per owner* (the citizen
or agency whose collection changes), in the writing transaction, with an upsert that keeps
the row locked until commit::

    INSERT INTO sync_counters (owner, seq) VALUES (:owner, 1)
    ON CONFLICT (owner) DO UPDATE SET seq = sync_counters.seq + 1
    RETURNING seq

A second writer for the same owner waits on that row lock until the first commits, so one
owner's changes commit in ``seq`` order; different owners never wait for each other. On SQLite
the database-wide write lock serialises writers anyway. Readers must filter by the same owner
the counter is keyed on.

Use it as the *first write* of the transaction (on SQLite a deferred transaction that reads
before its first write can hit ``SQLITE_BUSY`` on lock upgrade) and stamp every row the
transaction changes — upserts and tombstones alike — with the number it returns.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from wallet.lowband.dialects import upsert_insert
from wallet.lowband.tables import sync_counters


async def next_change_seq(session: AsyncSession, owner: str) -> int:
    """The next change number for ``owner``; the row stays locked until the caller commits."""
    statement = (
        upsert_insert(session, sync_counters)
        .values(owner=owner, seq=1)
        .on_conflict_do_update(
            index_elements=[sync_counters.c.owner],
            set_={"seq": sync_counters.c.seq + 1},
        )
        .returning(sync_counters.c.seq)
    )
    seq: int = (await session.execute(statement)).scalar_one()
    return seq
