"""Low-bandwidth API conventions shared by every route (SPEC "Low-bandwidth API conventions").

- :mod:`.representation` — ETag on GET 200s, ``If-None-Match`` → 304, ``Accept:
  application/msgpack`` responses, MessagePack request bodies, caching headers;
- :mod:`.idempotency` — ``Idempotency-Key`` replays, stored by :mod:`.replays`;
- :mod:`.compression` — the ``CompressionConfig`` that puts both inside compression;
- :mod:`.cursor`, :mod:`.sync`, :mod:`.counters` — ``?since=`` delta sync;
- :mod:`.tables` — ``lowband_metadata`` (``sync_counters``, ``idempotency_records``).
"""

from __future__ import annotations

from wallet.lowband.compression import LowbandCompressionConfig, LowbandCompressionMiddleware
from wallet.lowband.counters import next_change_seq
from wallet.lowband.cursor import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Cursor,
    InvalidCursor,
    InvalidLimit,
    PageRequest,
    parse_limit,
)
from wallet.lowband.idempotency import IdempotencyConfig, IdempotencyMiddleware
from wallet.lowband.principal import bearer_or_address
from wallet.lowband.replays import purge_expired
from wallet.lowband.representation import RepresentationConfig, RepresentationMiddleware
from wallet.lowband.sync import Changes, Page, read_changes
from wallet.lowband.tables import idempotency_records, lowband_metadata, sync_counters

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Changes",
    "Cursor",
    "IdempotencyConfig",
    "IdempotencyMiddleware",
    "InvalidCursor",
    "InvalidLimit",
    "LowbandCompressionConfig",
    "LowbandCompressionMiddleware",
    "Page",
    "PageRequest",
    "RepresentationConfig",
    "RepresentationMiddleware",
    "bearer_or_address",
    "idempotency_records",
    "lowband_metadata",
    "next_change_seq",
    "parse_limit",
    "purge_expired",
    "read_changes",
    "sync_counters",
]
