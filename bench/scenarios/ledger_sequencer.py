"""Sequencer throughput on SQLite vs a raw batched insert of the same leaf rows (same run).

SPEC budget: ≥ 20 000 events/s integrated, and (issue 4) ≥ 50 % of a raw batched insert.

* **sequencer** — N events are queued (as actions would, but in bulk), then
  ``Sequencer.integrate_once`` runs until the queue is empty: per batch, lock, read the queue,
  hash, ``INSERT … SELECT`` the leaves, insert the nodes, delete the queue rows, update the
  state, sign and store a checkpoint, commit.
* **raw** — the very leaf rows the sequencer produced, inserted into a fresh database with
  the same schema (same indexes) in batches of the same size, one transaction per batch,
  with the DB-API ``executemany`` (the fastest way SQLite takes rows from Python); the same
  through SQLAlchemy Core ``executemany`` is reported for reference. Both get the 64 MiB
  page cache the Sequencer sets on its connection, so the comparison is like for like.

All three use the app's SQLite settings (``wallet.db.create_engine``: WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.registry import Check, Metric, Params, Result, scenario
from ledger import events as ev
from ledger.merkle import leaf_hash, root_from_leaf_hashes
from ledger.sequencer import Sequencer
from ledger.storage import append_many, leaves, ledger_metadata
from wallet.db import create_engine

ORIGIN = "bench.carpeta.local/ledger"
_LEAF_COLUMNS = [c.name for c in leaves.columns]


def synthetic_events(n: int) -> list[ev.LedgerEvent]:
    """Realistic event mix: 20 agencies, 50 000 citizens, releases/denials/records."""
    secret = b"bench-pseudonym-secret-000000000"
    subjects = [ev.pseudonym(secret, f"citizen-{i}") for i in range(min(n, 50_000))]
    kinds = (ev.DATA_RELEASED, ev.RECORD_PUBLISHED, ev.DATA_DENIED, ev.CONSENT_GRANTED)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        kind = kinds[i % 4]
        out.append(
            ev.LedgerEvent(
                type=kind,
                at=start + timedelta(seconds=i),
                subject=subjects[i % len(subjects)],
                consumer=f"agencia-{i % 20:02d}",
                provider="renapo",
                categories=("acta_nacimiento",),
                purpose="tramite_pension",
                legal_basis="Art. 91 LGP" if i % 10 == 0 else None,
                consent_id=f"c-{i:09d}" if kind == ev.DATA_RELEASED else None,
                outcome="denied" if kind == ev.DATA_DENIED else "ok",
                request_id=f"r-{i:09d}",
            )
        )
    return out


async def fresh_engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(ledger_metadata.create_all)
    return engine


def _cache_pragma(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size = -65536")
    cursor.close()


async def raw_insert(path: Path, rows: list[tuple[Any, ...]], batch: int, *, core: bool) -> float:
    """Seconds to insert ``rows`` into an empty leaves table, one transaction per batch."""
    engine = await fresh_engine(path)
    # The same page cache the Sequencer gives its connection (sqlite_cache_mib=64).
    event.listen(engine.sync_engine, "connect", _cache_pragma)
    await engine.dispose()  # connections opened by fresh_engine predate the listener
    marks = ", ".join("?" for _ in _LEAF_COLUMNS)
    sql = f"INSERT INTO ledger_leaves ({', '.join(_LEAF_COLUMNS)}) VALUES ({marks})"
    at = _LEAF_COLUMNS.index("at")
    dicts = (
        [
            {
                **dict(zip(_LEAF_COLUMNS, r, strict=True)),
                "at": datetime.fromisoformat(r[at]).replace(tzinfo=UTC),
            }
            for r in rows
        ]
        if core
        else []
    )
    try:
        started = time.perf_counter()
        for k in range(0, len(rows), batch):
            async with engine.begin() as conn:
                if core:
                    await conn.execute(leaves.insert(), dicts[k : k + batch])
                else:
                    await conn.exec_driver_sql(sql, rows[k : k + batch])
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def integrate_all(path: Path, batch: int) -> tuple[float, int]:
    """Seconds for a fresh Sequencer to integrate the whole queue in ``path``; batches."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        sequencer = Sequencer(engine, Ed25519PrivateKey.generate(), ORIGIN, ORIGIN, max_batch=batch)
        await sequencer.prepare()
        started = time.perf_counter()
        while await sequencer.integrate_once() is not None:
            pass
        return time.perf_counter() - started, sequencer.batches
    finally:
        await engine.dispose()


async def check_and_read(path: Path, n: int) -> list[tuple[Any, ...]]:
    """The leaf rows as stored (raw DB-API values), after checking size and root."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql(
                f"SELECT {', '.join(_LEAF_COLUMNS)} FROM ledger_leaves ORDER BY leaf_index"
            )
            rows = [tuple(r) for r in result]
            state: tuple[Any, ...] = tuple(
                (await conn.exec_driver_sql("SELECT size, root FROM ledger_state")).one()
            )
            size, root = int(state[0]), bytes(state[1])
    finally:
        await engine.dispose()
    if len(rows) != n or size != n:
        raise AssertionError(f"sequencer integrated {len(rows)} of {n} events")
    if root != root_from_leaf_hashes([leaf_hash(r[2]) for r in rows]):
        raise AssertionError("sequencer root does not match the leaves")
    return rows


@scenario(
    "ledger_sequencer",
    defaults={"events": 200_000, "batch": 10_000, "repeats": 3},
    smoke={"events": 300, "batch": 64, "repeats": 1},
)
async def run(params: Params) -> Result:
    """Sequencer events/s on SQLite vs raw batched insert of the same leaf rows."""
    n, batch, repeats = int(params["events"]), int(params["batch"]), int(params["repeats"])
    result = Result()
    seq_times: list[float] = []
    raw_times: list[float] = []
    batches = 0
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        directory = Path(tmp)
        queued = directory / "queued.db"
        engine = await fresh_engine(queued)
        try:
            events = synthetic_events(n)
            started = time.perf_counter()
            for k in range(0, n, 20_000):
                async with engine.begin() as conn:
                    await append_many(conn, events[k : k + 20_000])
            queue_time = time.perf_counter() - started
            del events
        finally:
            await engine.dispose()  # last close checkpoints the WAL into queued.db

        rows: list[tuple[Any, ...]] = []
        for r in range(repeats):  # alternate, so both see the same machine conditions
            copy = directory / f"run{r}.db"
            shutil.copyfile(queued, copy)
            seconds, batches = await integrate_all(copy, batch)
            seq_times.append(seconds)
            if not rows:
                rows = await check_and_read(copy, n)
            copy.unlink()
            raw_times.append(await raw_insert(directory / f"raw{r}.db", rows, batch, core=False))
        core_time = await raw_insert(directory / "core.db", rows, batch, core=True)

    seq_best, raw_best = n / min(seq_times), n / min(raw_times)
    seq_median, raw_median = n / statistics.median(seq_times), n / statistics.median(raw_times)
    result.metrics += [
        Metric("sequencer (best)", seq_best, "events/s"),
        Metric("sequencer (median)", seq_median, "events/s"),
        Metric("raw insert, DB-API executemany (best)", raw_best, "rows/s"),
        Metric("raw insert, DB-API executemany (median)", raw_median, "rows/s"),
        Metric("raw insert, SQLAlchemy Core executemany", n / core_time, "rows/s"),
        Metric("queue append, bulk (reference)", n / queue_time, "events/s"),
        Metric("sequencer / raw (medians)", seq_median / raw_median, "ratio"),
        Metric("sequencer batches per run", batches, "batches"),
    ]
    result.checks += [
        Check("sequencer throughput (median)", seq_median, ">=", 20_000, "events/s"),
        Check("sequencer / raw DB-API insert (best vs best)", seq_best / raw_best, ">=", 0.5),
    ]
    result.notes.append(
        f"{n} events, batches of {batch}, {repeats} alternating runs of each; besides the leaf "
        f"rows the sequencer reads and deletes the queue, hashes, writes ~{2 * n} node rows "
        f"and signs {batches} checkpoints per run. Machine load (1-min average) at the end: "
        f"{os.getloadavg()[0]:.2f}."
    )
    return result
