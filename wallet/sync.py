"""Owner keys for change sequences: one stream per citizen and one per agency."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from wallet.lowband.counters import next_change_seq

__all__ = ["MAX_INDEX", "Limit", "Since", "agency_owner", "citizen_owner", "next_change_seq"]

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
