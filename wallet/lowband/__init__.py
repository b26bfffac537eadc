"""Low-bandwidth API conventions shared by every route (SPEC "Low-bandwidth API conventions").

- :mod:`.representation` — ETag on GET 200s, ``If-None-Match`` → 304, ``Accept:
  application/msgpack`` answers, MessagePack request bodies, caching headers;
- :mod:`.idempotency` — ``Idempotency-Key`` replays, stored by :mod:`.replays`;
- :mod:`.compression` — the ``CompressionConfig`` that puts both *inside* compression;
- :mod:`.cursor`, :mod:`.sync`, :mod:`.counters` — ``?since=`` delta sync;
- :mod:`.tables` — ``lowband_metadata`` (``sync_counters``, ``idempotency_records``).

Wiring (app factory)::

    compression_config=LowbandCompressionConfig(
        backend="brotli", brotli_gzip_fallback=True, minimum_size=256,
        representation=RepresentationConfig(default_body_types=DEFAULT_BODY_TYPES),
        idempotency=IdempotencyConfig(
            sessions=lambda scope: scope["app"].state["services"].sessions,
            principal=bearer_or_address(lambda request: client_address(request, settings)),
            now=clock.now,
        ),
    )

A collection route::

    page = PageRequest.parse(since, limit, key=cursor_key, scope=f"me/records:{citizen_id}")
    changes = await read_changes(session, select(Record).where(Record.citizen_id == citizen_id),
                                 page, seq=Record.change_seq, deleted_at=Record.deleted_at,
                                 row_id=Record.id)
    return changes.page(to_item)
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
from wallet.lowband.replays import KeyInFlight, KeyReused, purge_idempotency_records
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
    "KeyInFlight",
    "KeyReused",
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
    "purge_idempotency_records",
    "read_changes",
    "sync_counters",
]
