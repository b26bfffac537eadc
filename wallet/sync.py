"""Owner keys for change sequences: one stream per citizen and one per agency."""

from __future__ import annotations

from wallet.lowband.counters import next_change_seq

__all__ = ["agency_owner", "citizen_owner", "next_change_seq"]


def citizen_owner(citizen_id: str) -> str:
    return f"c:{citizen_id}"


def agency_owner(agency_id: str) -> str:
    return f"a:{agency_id}"
