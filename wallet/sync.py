"""Owner keys for change sequences: one stream per citizen and one per agency."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from wallet.lowband.counters import next_change_seq

__all__ = ["Limit", "Since", "agency_owner", "citizen_owner", "next_change_seq"]

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
