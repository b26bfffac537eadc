"""Bodies of the consent API (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Curp = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Categories = Annotated[list[Code], msgspec.Meta(min_length=1, max_length=20)]
Unit = Literal["hour", "day", "week", "month", "year"]


class FrequencyIn(msgspec.Struct, forbid_unknown_fields=True):
    unit: Unit
    value: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class ConsentRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    curp: Curp
    categories: Categories
    purpose: Code
    purpose_text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    duration_days: Annotated[int, msgspec.Meta(ge=1, le=1827)]
    frequency: FrequencyIn | None = None
    #: Shown to the citizen with the request: why the agency needs this.
    justification: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class ConsentRequestCreated(msgspec.Struct):
    id: str
    status: str


class GrantIn(msgspec.Struct, forbid_unknown_fields=True):
    consumer: Code
    categories: Categories
    purpose: Code
    valid_until: datetime
    frequency: FrequencyIn | None = None
    purpose_text: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class HistoryItem(msgspec.Struct, omit_defaults=True):
    status: str
    at: str
    by: str
    reason: str | None = None


class ConsentOut(msgspec.Struct, omit_defaults=True):
    """A consent as both sides see it; ``receipt`` is a JWS of the exact artefact version."""

    consent_id: str
    status: str
    version: int
    consumer: str
    consumer_name: str
    provider: str
    categories: list[str]
    category_names: list[str]
    sensitive: bool
    purpose: dict[str, str]
    legal_basis: str
    access_mode: str
    fetch_type: str
    frequency: dict[str, Any]
    valid_from: str
    valid_until: str
    use_count: int
    history: list[HistoryItem]
    receipt: str
    last_used_at: str | None = None
    ledger: dict[str, int] | None = None


class DataRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    curp: Curp
    category: Code
    purpose: Code
    consent_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class ReleasedRecord(msgspec.Struct, omit_defaults=True):
    id: str
    issuer: str
    category: str
    title: str
    data: dict[str, Any]
    digest: str
    issued_at: datetime | None = None
    issuer_signature: str | None = None


class DataReleased(msgspec.Struct):
    request_id: str
    records: list[ReleasedRecord]
    receipt: str
    basis: dict[str, str]
    ledger: dict[str, int]


class NoticeOut(msgspec.Struct, omit_defaults=True):
    id: str
    kind: str
    text: str
    created_at: datetime
    agency: str | None = None
    consent_id: str | None = None
