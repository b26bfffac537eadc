"""Owner keys for change sequences: one stream per citizen and one per agency."""

from __future__ import annotations

from typing import Annotated, Any

from litestar.params import QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.lowband.counters import next_change_seq
from wallet.lowband.cursor import PageRequest
from wallet.lowband.sync import Changes, read_changes

__all__ = [
    "MAX_INDEX",
    "Limit",
    "Since",
    "agency_owner",
    "citizen_owner",
    "next_change_seq",
    "owner_changes",
]

#: Largest integer a client may send as an index or size: both databases store 64-bit signed
#: integers, and a larger value must be a clean 400, not an overflow deep in the driver.
MAX_INDEX = 2**62

#: ``?since=`` and ``?limit=`` as every delta-sync collection declares them.
Since = Annotated[
    str | None,
    QueryParameter(name="since", max_length=96, description="Cursor de sincronización"),
]
Limit = Annotated[
    str | None, QueryParameter(name="limit", description="Máximo de elementos (1-200)")
]


def citizen_owner(citizen_id: str) -> str:
    return f"c:{citizen_id}"


def agency_owner(agency_id: str) -> str:
    return f"a:{agency_id}"


async def owner_changes(
    session: AsyncSession,
    model: Any,
    owner: Any,
    owner_id: str,
    *,
    key: bytes,
    scope: str,
    since: str | None,
    limit: str | None,
    seq: Any = None,
    row_id: Any = None,
) -> Changes[Any]:
    """One page of one owner's changes to ``model`` (rows with ``change_seq``, ``deleted_at``
    and ``id`` unless told otherwise); the cursor is bound to ``scope:owner_id``."""
    page = PageRequest.parse(since, limit, key=key, scope=f"{scope}:{owner_id}")
    return await read_changes(
        session,
        select(model).where(owner == owner_id),
        page,
        seq=model.change_seq if seq is None else seq,
        deleted_at=model.deleted_at,
        row_id=model.id if row_id is None else row_id,
    )
