"""Bodies of the folder API: what agencies send and what citizens read (msgspec Structs).

Citizen-facing items are kept lean for prepaid data plans: list items leave out a record's
content (read it with ``GET /api/v1/me/records/{id}``) and omit empty fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

Status = Literal["open", "action_required", "in_review", "resolved", "rejected"]
OPEN_STATUSES = ("open", "action_required", "in_review")

Curp = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MessageText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\w.:-]+$")]


class Step(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: Title
    done: bool = False
    date: date | None = None


class ProcedureIn(msgspec.Struct, forbid_unknown_fields=True):
    curp: Curp
    title: Title
    status: Status
    steps: Annotated[list[Step], msgspec.Meta(max_length=30)] | None = None
    next_action: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    due_date: date | None = None
    contact: Annotated[str, msgspec.Meta(max_length=300)] | None = None


class RecordIn(msgspec.Struct, forbid_unknown_fields=True):
    curp: Curp
    category: Code
    title: Title
    data: dict[str, Any]
    issued_at: datetime | None = None
    #: Optional detached proof by the issuing agency (e.g. a JWS over the data); kept as given.
    signature: Annotated[str, msgspec.Meta(max_length=8192)] | None = None


class Published(msgspec.Struct, omit_defaults=True):
    """Answer to an agency's upsert: what it is now, and whether this call changed it."""

    id: str
    external_id: str
    created: bool
    changed: bool
    updated_at: datetime
    digest: str | None = None
    ledger: dict[str, int] | None = None


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    body: MessageText


class MessageOut(msgspec.Struct):
    id: str
    procedure_id: str
    author: Literal["citizen", "agency"]
    body: str
    created_at: datetime


class AgencyMessage(msgspec.Struct):
    """A message as the agency sees it: on which of its procedures (its own external id)."""

    id: str
    external_id: str
    author: Literal["citizen", "agency"]
    body: str
    created_at: datetime


class ProcedureItem(msgspec.Struct, omit_defaults=True):
    id: str
    agency: str
    agency_name: str
    title: str
    status: Status
    updated_at: datetime
    steps: list[Step] | None = None
    next_action: str | None = None
    due_date: date | None = None
    contact: str | None = None


class ProcedureDetail(ProcedureItem, kw_only=True):
    messages: list[MessageOut]


class RecordItem(msgspec.Struct, omit_defaults=True):
    id: str
    agency: str
    agency_name: str
    category: str
    category_name: str
    title: str
    digest: str
    updated_at: datetime
    issued_at: datetime | None = None
    signed: bool = False


class RecordDetail(RecordItem, kw_only=True):
    data: dict[str, Any]
    issuer_signature: str | None = None


class Summary(msgspec.Struct):
    """The dashboard's first call: counts only, a few dozen bytes."""

    open_procedures: int
    action_required: int
    records: int
    active_consents: int
    pending_requests: int
    new_events: int
