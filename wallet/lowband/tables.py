"""The tables this package owns, on their own ``MetaData`` for Alembic (``lowband_metadata``).

- ``sync_counters``: one row per owner (a citizen or an agency) holding the last change
  sequence number handed out; see :func:`wallet.lowband.counters.next_change_seq`.
- ``idempotency_records``: one row per (principal, ``Idempotency-Key``); while the first
  request runs ``status`` is NULL (in flight, leased until ``locked_until``); afterwards it holds
  the response to replay until ``expires_at``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from eidentity.dbtypes import UTCDateTime
from eidentity.models import NAMING

lowband_metadata = MetaData(naming_convention=NAMING)

sync_counters = Table(
    "sync_counters",
    lowband_metadata,
    Column("owner", String(80), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

idempotency_records = Table(
    "idempotency_records",
    lowband_metadata,
    # SHA-256 hex of principal + key: fixed width, and no client address or key in clear.
    Column("id", String(64), primary_key=True),
    # SHA-256 hex of method, path, query and body of the first request.
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=True),  # NULL while in flight
    Column("headers", Text, nullable=True),  # JSON [[name, value], …] to replay
    Column("body", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)
