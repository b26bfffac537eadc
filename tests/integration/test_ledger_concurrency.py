"""Several sequencers and producers at once: the tree never forks, skips or loses an event.

Producers commit (and sometimes roll back) appends concurrently, so queue ids commit out of
order; sequencers compete for the state-row lock — as asyncio tasks with their own engines
(connection pools) and as separate OS processes. Afterwards every committed queue id must
be exactly one leaf, indices contiguous, and every signed checkpoint the root of its prefix
(which makes all checkpoints mutually consistent; the proofs between them are checked too).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency
from ledger.proofs import consistency_proof
from ledger.sequencer import Sequencer
from ledger.storage import append, leaves, queue
from tests.integration.test_ledger_storage import (
    ORIGIN,
    Ledger,
    create_ledger_engine,
    make_event,
    open_ledger,
)
from wallet.db import create_engine

ROOT = Path(__file__).resolve().parents[2]


async def produce(url: str, seed: int, transactions: int) -> list[int]:
    """Commit ``transactions`` small transactions (1–3 events); roll back about one in six."""
    rnd = random.Random(seed)
    engine = create_engine(url)
    committed: list[int] = []
    try:
        for t in range(transactions):
            async with engine.connect() as conn:
                await conn.begin()
                ids = [
                    await append(conn, make_event(seed * 10_000 + t * 3 + k))
                    for k in range(rnd.randint(1, 3))
                ]
                await asyncio.sleep(rnd.random() * 0.003)  # hold the transaction open a bit
                if rnd.random() < 1 / 6:
                    await conn.rollback()
                else:
                    await conn.commit()
                    committed += ids
            await asyncio.sleep(rnd.random() * 0.002)
    finally:
        await engine.dispose()
    return committed


async def assert_log_is_sound(ledger: Ledger, committed: list[int]) -> None:
    async with ledger.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(queue))).scalar() == 0
        rows = (
            await conn.execute(
                select(leaves.c.leaf_index, leaves.c.queue_id, leaves.c.leaf).order_by(
                    leaves.c.leaf_index
                )
            )
        ).all()
    assert [r.leaf_index for r in rows] == list(range(len(rows))), "skipped or repeated index"
    assert sorted(r.queue_id for r in rows) == sorted(committed), "lost or extra events"
    hashes = [leaf_hash(bytes(r.leaf)) for r in rows]
    cps = await ledger.all_checkpoints()  # every signature verifies
    sizes = [c.size for c in cps]
    assert sizes == sorted(set(sizes)) and sizes[-1] == len(rows)
    for cp in cps:
        assert cp.root_hash == root_from_leaf_hashes(hashes[: cp.size]), f"fork at {cp.size}"
    async with ledger.engine.connect() as conn:
        for a, b in itertools.pairwise(cps):
            proof = await consistency_proof(conn, a.size, b.size)
            assert verify_consistency(a.size, b.size, a.root_hash, b.root_hash, proof.hashes)


async def drain(ledger: Ledger) -> None:
    while await ledger.sequencer.integrate_once() is not None:
        pass


async def test_concurrent_sequencer_tasks_and_producers(database_url: str) -> None:
    ledger = await open_ledger(database_url)
    engines: list[AsyncEngine] = [await create_ledger_engine(database_url) for _ in range(3)]
    try:
        sequencers = [
            Sequencer(e, ledger.key, ORIGIN, ORIGIN, max_batch=5, max_delay=0.01, linger=0)
            for e in engines
        ]
        stop = asyncio.Event()
        running = [asyncio.create_task(s.run(stop)) for s in sequencers]
        produced = await asyncio.gather(*(produce(database_url, seed, 40) for seed in range(4)))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 30)
        await drain(ledger)
        committed = [i for ids in produced for i in ids]
        assert len(committed) > 100
        await assert_log_is_sound(ledger, committed)
        assert sum(s.integrated for s in sequencers) + ledger.sequencer.integrated == len(committed)
        assert sum(s.batches > 0 for s in sequencers) >= 2, "the sequencers did not compete"
    finally:
        for e in engines:
            await e.dispose()
        await ledger.engine.dispose()


CHILD = """
import asyncio, json, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger.sequencer import Sequencer
from wallet.db import create_engine

async def main(url, key_hex, origin, done):
    engine = create_engine(url)
    seq = Sequencer(engine, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key_hex)),
                    origin, origin, max_batch=4)
    await seq.prepare()
    print("ready", flush=True)
    try:
        while True:
            signed = await seq.integrate_once()
            if signed is None:
                if Path(done).exists():
                    break
                await asyncio.sleep(0.002)
    finally:
        await engine.dispose()
    print(json.dumps({"batches": seq.batches, "integrated": seq.integrated}))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_sequencers_in_separate_processes_never_fork(
    database_url: str, tmp_path: Path
) -> None:
    ledger = await open_ledger(database_url)
    done = tmp_path / "done"
    key_hex = ledger.key.private_bytes_raw().hex()
    try:
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                database_url,
                key_hex,
                ORIGIN,
                str(done),
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        for child in children:  # start producing only once every sequencer is up
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 120)
            assert line.strip() == b"ready", line
        produced = await asyncio.gather(*(produce(database_url, seed, 60) for seed in range(3)))
        done.touch()
        reports = []
        for child in children:
            out, err = await asyncio.wait_for(child.communicate(), 120)
            assert child.returncode == 0, err.decode()
            reports.append(json.loads(out.decode().strip().splitlines()[-1]))
        await drain(ledger)
        committed = [i for ids in produced for i in ids]
        await assert_log_is_sound(ledger, committed)
        integrated = sum(r["integrated"] for r in reports) + ledger.sequencer.integrated
        assert integrated == len(committed)
        assert sum(r["batches"] > 0 for r in reports) >= 2, reports
    finally:
        await ledger.engine.dispose()
