"""Migration 0004 on a database holding consents from before it (SQLite and PostgreSQL): the
counters and in-window uses written inside artefacts come out as columns and use-log rows,
nothing else moves, and the migration goes back down cleanly."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from eidentity.dbtypes import UTCDateTime
from tests.conftest import run_async
from wallet import db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

consents = sa.table(
    "consents",
    sa.column("consent_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("principal", sa.String()),
    sa.column("consumer", sa.String()),
    sa.column("provider", sa.String()),
    sa.column("status", sa.String()),
    sa.column("categories", sa.String()),
    sa.column("purpose", sa.String()),
    sa.column("valid_until", UTCDateTime()),
    sa.column("artefact", sa.LargeBinary()),
    sa.column("receipt", sa.Text()),
    sa.column("anchor_queue_id", sa.BigInteger()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("change_seq", sa.BigInteger()),
)


def _row(consent_id: str, artefact: dict[str, object]) -> dict[str, object]:
    return {
        "consent_id": consent_id,
        "version": 3,
        "principal": "c-1",
        "consumer": "imss",
        "provider": "any",
        "status": "active",
        "categories": "acta_nacimiento",
        "purpose": "alta_beneficiario",
        "valid_until": T0.replace(month=12),
        "artefact": json.dumps(artefact, sort_keys=True).encode(),
        "receipt": "a.b.c",
        "anchor_queue_id": None,
        "created_at": T0,
        "updated_at": T0,
        "change_seq": 7,
    }


def test_counters_and_in_window_uses_move_out_of_the_artefacts(database_url: str) -> None:
    used: dict[str, object] = {
        "use_count": 5,
        "last_used_at": "2026-11-20T11:00:00Z",
        "uses": ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"],
    }
    unused: dict[str, object] = {"use_count": 0, "last_used_at": None, "uses": []}

    async def work() -> None:
        await asyncio.to_thread(db.upgrade, database_url, "0003")
        engine = db.create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(consents.insert(), [_row("used", used), _row("unused", unused)])
        await engine.dispose()
        await asyncio.to_thread(db.upgrade, database_url, "head")
        engine = db.create_engine(database_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT consent_id, use_count, last_used_at, version, change_seq"
                        " FROM consents ORDER BY consent_id"
                    )
                )
            ).all()
            log = (
                await conn.execute(
                    sa.text("SELECT consent_id, used_at FROM consent_uses ORDER BY used_at")
                )
            ).all()
        await engine.dispose()
        by_id = {r[0]: r for r in rows}
        assert by_id["used"][1] == 5 and by_id["used"][3:] == (3, 7)
        assert _instant(by_id["used"][2]) == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
        assert by_id["unused"][1] == 0 and by_id["unused"][2] is None
        assert [r[0] for r in log] == ["used", "used"]
        assert [_instant(r[1]) for r in log] == [
            datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
            datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
        ]
        # And back down: the columns and the log go, the consents stay.
        await asyncio.to_thread(db.downgrade, database_url, "0003")
        engine = db.create_engine(database_url)
        async with engine.connect() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM consents"))).scalar_one()
        await engine.dispose()
        assert count == 2

    run_async(work)


def _instant(value: object) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
