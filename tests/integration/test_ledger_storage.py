"""The ledger on real databases (SQLite file and PostgreSQL): append, sequence, prove, export.

Also holds the small helpers the other ``test_ledger_*`` integration modules share (building
a ledger, serving it over HTTP to the monitor), since only ``test_ledger_*`` files are ours.
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from ledger import events as ev
from ledger.cli import ledger_group
from ledger.merkle import (
    CompactRange,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledger.monitor import Monitor, MonitorResult, MonitorStatus
from ledger.note import Checkpoint, sign_checkpoint, verify_note
from ledger.proofs import (
    EventFilter,
    ProofRequestError,
    checkpoint_at,
    consistency_proof,
    current_size,
    events_for_subject,
    export_leaves,
    get_leaf,
    inclusion_proof,
    inclusion_proofs,
    latest_checkpoint,
    leaf_index_for,
    list_checkpoints,
    query_events,
    stats,
)
from ledger.sequencer import LedgerCorruptError, Sequencer
from ledger.storage import (
    append,
    checkpoints,
    ensure_state,
    leaves,
    ledger_metadata,
    nodes,
    queue,
    state,
)
from ledger.verify import verify_export, verify_export_file
from wallet.db import create_engine

ORIGIN = "carpeta.test/ledger"
SECRET = b"pseudonym-secret-for-tests-0123"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def subject_of(n: int) -> str:
    return ev.pseudonym(SECRET, f"citizen-{n}")


def make_event(i: int, *, citizen: int | None = None, at: datetime | None = None) -> ev.LedgerEvent:
    """A varied but deterministic event (types, consumers, outcomes rotate with ``i``)."""
    kinds = (ev.RECORD_PUBLISHED, ev.RECORD_UPDATED, ev.DATA_RELEASED, ev.DATA_DENIED)
    kind = kinds[i % len(kinds)]
    return ev.LedgerEvent(
        type=kind,
        at=at or T0 + timedelta(hours=i),
        subject=subject_of(i % 5 if citizen is None else citizen),
        consumer=f"agencia-{i % 3}",
        provider="renapo",
        categories=("acta_nacimiento",),
        purpose="tramite_pension" if i % 2 else "beca",
        legal_basis="Art. 91 LGP" if kind == ev.DATA_RELEASED and i % 3 == 0 else None,
        outcome="denied" if kind == ev.DATA_DENIED else "ok",
        request_id=f"req-{i}",
    )


async def create_ledger_engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(ledger_metadata.create_all)
    return engine


@dataclass
class Ledger:
    """A ledger under test: engine, key, a sequencer, and the leaves we know we committed."""

    engine: AsyncEngine
    key: Ed25519PrivateKey
    sequencer: Sequencer

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    def new_sequencer(self, engine: AsyncEngine | None = None, **kwargs: object) -> Sequencer:
        return Sequencer(engine or self.engine, self.key, ORIGIN, ORIGIN, **kwargs)  # type: ignore[arg-type]

    async def commit_events(self, events: list[ev.LedgerEvent]) -> list[int]:
        async with self.engine.begin() as conn:
            return [await append(conn, e) for e in events]

    async def all_leaves(self) -> list[bytes]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(leaves.c.leaf).order_by(leaves.c.leaf_index))
            return [bytes(r[0]) for r in rows]

    async def all_checkpoints(self) -> list[Checkpoint]:
        async with self.engine.connect() as conn:
            found = await list_checkpoints(conn, limit=100_000)
        return [verify_note(c.note, ORIGIN, self.public_key, origin=ORIGIN) for c in found]


async def open_ledger(url: str, **kwargs: object) -> Ledger:
    engine = await create_ledger_engine(url)
    key = Ed25519PrivateKey.generate()
    ledger = Ledger(engine, key, Sequencer(engine, key, ORIGIN, ORIGIN, **kwargs))  # type: ignore[arg-type]
    await ledger.sequencer.prepare()
    return ledger


async def build(ledger: Ledger, batches: list[int], start: int = 0) -> None:
    """Commit and integrate ``batches`` (event counts): one checkpoint per batch."""
    i = start
    for count in batches:
        await ledger.commit_events([make_event(i + k) for k in range(count)])
        i += count
        assert await ledger.sequencer.integrate_once() is not None


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    opened = await open_ledger(database_url)
    try:
        yield opened
    finally:
        await opened.engine.dispose()


def ledger_transport(
    runner: asyncio.Runner, engine: AsyncEngine, key: Ed25519PrivateKey
) -> httpx.MockTransport:
    """The three public endpoints the witness uses, answered from the real stored data."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/carpeta-ledger":
            raw = key.public_key().public_bytes_raw()
            return httpx.Response(
                200,
                json={
                    "origin": ORIGIN,
                    "key_name": ORIGIN,
                    "public_key": base64.b64encode(raw).decode(),
                },
            )
        if path == "/ledger/checkpoint":

            async def latest() -> str:
                async with engine.connect() as conn:
                    found = await latest_checkpoint(conn)
                assert found is not None
                return found.note

            return httpx.Response(200, text=runner.run(latest()))
        if path == "/ledger/proofs/consistency":
            first = int(request.url.params["first"])
            second = int(request.url.params["second"])

            async def prove() -> httpx.Response:
                async with engine.connect() as conn:
                    try:
                        proof = await consistency_proof(conn, first, second)
                    except ProofRequestError as exc:
                        return httpx.Response(400, json={"title": str(exc)})
                return httpx.Response(200, json=proof.to_json())

            return runner.run(prove())
        return httpx.Response(404)

    return httpx.MockTransport(handler)


async def export_lines(engine: AsyncEngine, tree_size: int | None = None) -> list[bytes]:
    return [item.json_line() async for item in export_leaves(engine, tree_size=tree_size)]


# ---------------------------------------------------------------------------------------------
# Append and integrate
# ---------------------------------------------------------------------------------------------


async def test_append_in_rolled_back_transaction_leaves_no_event(ledger: Ledger) -> None:
    async with ledger.engine.connect() as conn:
        await conn.begin()
        anchor = await append(conn, make_event(0))
        assert anchor > 0
        await conn.rollback()
    assert await ledger.sequencer.integrate_once() is None
    async with ledger.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(queue))).scalar() == 0
        assert await current_size(conn) == 0
        latest = await latest_checkpoint(conn)
    assert latest is not None and latest.size == 0  # prepare() signed the empty tree


async def test_append_through_an_orm_session_commits_with_it(ledger: Ledger) -> None:
    sessions = async_sessionmaker(ledger.engine, expire_on_commit=False)
    async with sessions() as session:
        await append(session, make_event(0))
        await session.rollback()
    async with sessions() as session:
        kept = await append(session, make_event(1))
        await ensure_state(session)  # idempotent, and works on a session too
        await session.commit()
    assert await ledger.sequencer.integrate_once() is not None
    async with ledger.engine.connect() as conn:
        assert await leaf_index_for(conn, kept) == 0
        assert await get_leaf(conn, 0) == make_event(1).to_leaf()
        assert await current_size(conn) == 1  # the rolled-back event never existed
    async with sessions() as session:  # the read side takes a session as well
        proof = await inclusion_proof(session, 0, 1)
        assert proof.hashes == () and (await latest_checkpoint(session)) is not None


async def test_committed_appends_become_contiguous_leaves(ledger: Ledger) -> None:
    events = [make_event(i) for i in range(25)]
    anchors = await ledger.commit_events(events[:10])
    anchors += await ledger.commit_events(events[10:])
    signed = await ledger.sequencer.integrate_once()
    assert signed is not None and signed.size == 25
    async with ledger.engine.connect() as conn:
        indices = [
            r[0] for r in await conn.execute(select(leaves.c.leaf_index).order_by("leaf_index"))
        ]
        assert indices == list(range(25))
        assert [await leaf_index_for(conn, a) for a in anchors] == list(range(25))
        assert [await get_leaf(conn, i) for i in range(25)] == [e.to_leaf() for e in events]
        assert (await conn.execute(select(func.count()).select_from(queue))).scalar() == 0
        assert await leaf_index_for(conn, 10**9) is None
    # Anchors stay unique after the queue empties (no id reuse on SQLite).
    later = await ledger.commit_events([make_event(99)])
    assert later[0] > max(anchors)


async def test_checkpoint_signature_and_root_match_naive_root(ledger: Ledger) -> None:
    await build(ledger, [1, 2, 5, 13])
    async with ledger.engine.connect() as conn:
        latest = await latest_checkpoint(conn)
    assert latest is not None
    checkpoint = verify_note(latest.note, ORIGIN, ledger.public_key, origin=ORIGIN)
    all_leaves = await ledger.all_leaves()
    assert checkpoint.size == len(all_leaves) == 21
    assert checkpoint.root_hash == root_from_leaf_hashes([leaf_hash(x) for x in all_leaves])
    sizes = [c.size for c in await ledger.all_checkpoints()]
    assert sizes == [0, 1, 3, 8, 21]
    async with ledger.engine.connect() as conn:
        row = (await conn.execute(select(state.c.size, state.c.root))).one()
    assert (row.size, bytes(row.root)) == (21, checkpoint.root_hash)


async def test_every_stored_node_is_the_hash_of_its_leaves(ledger: Ledger) -> None:
    await build(ledger, [3, 4, 9])
    hashes = [leaf_hash(x) for x in await ledger.all_leaves()]
    async with ledger.engine.connect() as conn:
        stored = {
            (lv, ix): bytes(h)
            for lv, ix, h in await conn.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash))
        }
    expected: dict[tuple[int, int], bytes] = {}
    for level in range(5):
        width = 1 << level
        for index in range(len(hashes) // width):
            expected[(level, index)] = root_from_leaf_hashes(
                hashes[index * width : (index + 1) * width]
            )
    assert stored == expected


async def test_consistency_between_every_pair_of_checkpoints(ledger: Ledger) -> None:
    await build(ledger, [1, 1, 2, 3, 5, 8, 13, 1, 30])
    cps = await ledger.all_checkpoints()
    async with ledger.engine.connect() as conn:
        for a in cps:
            for b in cps:
                if a.size > b.size:
                    continue
                proof = await consistency_proof(conn, a.size, b.size)
                assert verify_consistency(a.size, b.size, a.root_hash, b.root_hash, proof.hashes)
                assert proof.to_json()["first"] == a.size


async def test_proof_requests_out_of_range_explain_in_spanish(ledger: Ledger) -> None:
    await build(ledger, [4])
    async with ledger.engine.connect() as conn:
        with pytest.raises(ProofRequestError, match="tamaño actual es 4") as too_big:
            await inclusion_proof(conn, 0, 5)
        assert too_big.value.code == "tree-size-out-of-range"
        # The last leaf's proof needs no node of the missing leaf: the size check still holds.
        with pytest.raises(ProofRequestError, match="tamaño actual es 4"):
            await inclusion_proof(conn, 4, 5)
        with pytest.raises(ProofRequestError, match="de 0 a 3") as bad_index:
            await inclusion_proof(conn, 4, 4)
        assert bad_index.value.code == "leaf-index-out-of-range"
        with pytest.raises(ProofRequestError, match="al menos 1"):
            await inclusion_proof(conn, 0, 0)
        with pytest.raises(ProofRequestError, match="first ≤ second"):
            await consistency_proof(conn, 3, 2)
        with pytest.raises(ProofRequestError, match="tamaño actual es 4"):
            await consistency_proof(conn, 2, 9)
        assert (await consistency_proof(conn, 0, 4)).hashes == ()
        assert (await consistency_proof(conn, 4, 4)).hashes == ()


async def test_batched_inclusion_proofs_share_one_read(ledger: Ledger) -> None:
    await build(ledger, [300, 45])
    hashes = [leaf_hash(x) for x in await ledger.all_leaves()]
    root = root_from_leaf_hashes(hashes)
    async with ledger.engine.connect() as conn:
        wanted = [344, 0, 7, 128, 255, 256, 300, 343]
        proofs = await inclusion_proofs(conn, wanted, 345)
        assert [p.leaf_index for p in proofs] == wanted
        for p in proofs:
            assert verify_inclusion(hashes[p.leaf_index], p.leaf_index, 345, p.hashes, root)
            assert p == await inclusion_proof(conn, p.leaf_index, 345)
        # Every leaf of a 200-leaf tree needs more nodes than one query takes: chunked.
        root_200 = root_from_leaf_hashes(hashes[:200])
        every = await inclusion_proofs(conn, list(range(200)), 200)
        assert all(
            verify_inclusion(hashes[p.leaf_index], p.leaf_index, 200, p.hashes, root_200)
            for p in every
        )
        with pytest.raises(ProofRequestError, match="de 0 a 199"):
            await inclusion_proofs(conn, [200], 200)
        with pytest.raises(ProofRequestError, match="tamaño actual es 345"):
            await inclusion_proofs(conn, [1], 346)
        assert await inclusion_proofs(conn, [], 345) == []


def test_inclusion_proofs_for_random_index_and_size(database_url: str) -> None:
    """Hypothesis over (index, size ≤ current): every proof verifies against that size's root."""
    with asyncio.Runner() as runner:
        ledger = runner.run(open_ledger(database_url))
        try:
            runner.run(build(ledger, [1, 6, 17, 40, 3, 33]))
            hashes = [leaf_hash(x) for x in runner.run(ledger.all_leaves())]
            total = len(hashes)

            async def prove(index: int, size: int) -> tuple[bytes, ...]:
                async with ledger.engine.connect() as conn:
                    return (await inclusion_proof(conn, index, size)).hashes

            @settings(max_examples=120, deadline=None)
            @given(st.data())
            def check(data: st.DataObject) -> None:
                size = data.draw(st.integers(1, total), label="size")
                index = data.draw(st.integers(0, size - 1), label="index")
                proof = runner.run(prove(index, size))
                root = root_from_leaf_hashes(hashes[:size])
                assert verify_inclusion(hashes[index], index, size, proof, root)
                if size > 1:
                    assert not verify_inclusion(hashes[index - 1], index, size, proof, root)

            check()
        finally:
            runner.run(ledger.engine.dispose())


# ---------------------------------------------------------------------------------------------
# Sequencer behaviour
# ---------------------------------------------------------------------------------------------


async def test_batches_are_capped_and_one_checkpoint_per_batch(database_url: str) -> None:
    ledger = await open_ledger(database_url, max_batch=7)
    try:
        await ledger.commit_events([make_event(i) for i in range(20)])
        sizes = []
        while (signed := await ledger.sequencer.integrate_once()) is not None:
            sizes.append(signed.size)
        assert sizes == [7, 14, 20]
        assert ledger.sequencer.batches == 3 and ledger.sequencer.integrated == 20
    finally:
        await ledger.engine.dispose()


async def test_second_sequencer_reloads_the_frontier(ledger: Ledger) -> None:
    other_engine = await create_ledger_engine(str(ledger.engine.url.render_as_string(False)))
    try:
        other = ledger.new_sequencer(other_engine)
        for round_ in range(6):
            await ledger.commit_events([make_event(round_ * 10 + k) for k in range(round_ + 1)])
            seq = ledger.sequencer if round_ % 2 else other
            assert await seq.integrate_once() is not None
        hashes = [leaf_hash(x) for x in await ledger.all_leaves()]
        for cp in await ledger.all_checkpoints():
            assert cp.root_hash == root_from_leaf_hashes(hashes[: cp.size])
    finally:
        await other_engine.dispose()


async def test_sequencer_refuses_to_extend_a_tampered_frontier(ledger: Ledger) -> None:
    await build(ledger, [6])
    async with ledger.engine.begin() as conn:
        # size 6 = perfect subtrees (2, 0) and (1, 2): damage one of them.
        await conn.execute(
            update(nodes).where(nodes.c.level == 1, nodes.c.idx == 2).values(hash=b"\x00" * 32)
        )
    await ledger.commit_events([make_event(50)])
    fresh = ledger.new_sequencer()  # no in-memory frontier: must reload and check
    with pytest.raises(LedgerCorruptError, match="do not reproduce the root"):
        await fresh.integrate_once()
    async with ledger.engine.connect() as conn:
        assert await current_size(conn) == 6  # nothing was signed over the damage


def test_sequencer_settings_are_checked() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="key name"):
        Sequencer(engine, key, ORIGIN, "con espacio")
    with pytest.raises(ValueError, match="max_delay"):
        Sequencer(engine, key, ORIGIN, ORIGIN, max_delay=1.5)  # merge delay would exceed 2 s
    with pytest.raises(ValueError, match="max_batch"):
        Sequencer(engine, key, ORIGIN, ORIGIN, max_batch=0)
    with pytest.raises(ValueError, match="origin"):
        Sequencer(engine, key, "", ORIGIN)


class _FailingSequencer(Sequencer):
    """Fails after leaves and nodes are written but before the checkpoint: a crash mid-batch."""

    async def _sign_and_store(self, conn: Any, size: int, root: bytes) -> Any:
        if size > 3:
            raise RuntimeError("crash in the middle of the batch")
        return await super()._sign_and_store(conn, size, root)


async def test_a_batch_that_fails_midway_leaves_no_trace(ledger: Ledger) -> None:
    await build(ledger, [3])
    anchors = await ledger.commit_events([make_event(i) for i in range(3, 10)])
    failing = _FailingSequencer(ledger.engine, ledger.key, ORIGIN, ORIGIN)
    with pytest.raises(RuntimeError, match="crash"):
        await failing.integrate_once()
    async with ledger.engine.connect() as conn:
        assert await current_size(conn) == 3
        assert (await conn.execute(select(func.count()).select_from(leaves))).scalar() == 3
        assert (await conn.execute(select(func.count()).select_from(queue))).scalar() == 7
        assert (
            await conn.execute(select(func.max(nodes.c.idx)).where(nodes.c.level == 0))
        ).scalar() == 2
    # The healthy sequencer (whose in-memory frontier is still size 3) carries on.
    signed = await ledger.sequencer.integrate_once()
    assert signed is not None and signed.size == 10
    async with ledger.engine.connect() as conn:
        assert [await leaf_index_for(conn, a) for a in anchors] == list(range(3, 10))


async def test_run_integrates_within_the_merge_delay(ledger: Ledger) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(ledger.sequencer.run(stop))
    try:
        loop = asyncio.get_running_loop()
        for notify in (True, False):  # woken by notify(), then found by polling
            anchors = await ledger.commit_events([make_event(1), make_event(2)])
            started = loop.time()
            if notify:
                ledger.sequencer.notify()
            while True:
                async with ledger.engine.connect() as conn:
                    if await leaf_index_for(conn, anchors[-1]) is not None:
                        break
                assert loop.time() - started < 2.0, "merge delay exceeded 2 s"
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    async with ledger.engine.connect() as conn:
        assert await current_size(conn) == 4


# ---------------------------------------------------------------------------------------------
# Citizens' and regulators' views
# ---------------------------------------------------------------------------------------------


async def test_events_by_subject_newest_first_with_cursor(ledger: Ledger) -> None:
    await build(ledger, [30])
    subject = subject_of(2)
    mine = [i for i in range(30) if i % 5 == 2]
    async with ledger.engine.connect() as conn:
        seen: list[int] = []
        before = None
        while True:
            page = await events_for_subject(conn, subject, limit=2, before=before)
            seen += [item.leaf_index for item in page.items]
            assert all(item.subject == subject for item in page.items)
            if page.next_before is None:
                break
            before = page.next_before
        assert seen == sorted(mine, reverse=True)
        delta = await events_for_subject(conn, subject, after=mine[-3])
        assert [i.leaf_index for i in delta.items] == [mine[-1], mine[-2]]
        first = (await events_for_subject(conn, subject, limit=1)).items[0]
        assert first.event() == make_event(mine[-1])
        assert first.to_json()["event"]["subject"] == subject
        assert (await events_for_subject(conn, subject_of(99))).items == []


async def test_regulator_filters_and_stats(ledger: Ledger) -> None:
    await build(ledger, [40])
    expected = [make_event(i) for i in range(40)]
    async with ledger.engine.connect() as conn:
        filt = EventFilter(consumer="agencia-1", type=ev.DATA_RELEASED)
        got = (await query_events(conn, filt, limit=500)).items
        want = [
            i
            for i, e in enumerate(expected)
            if e.consumer == "agencia-1" and e.type == ev.DATA_RELEASED
        ]
        assert [g.leaf_index for g in got] == sorted(want, reverse=True)
        window = EventFilter(since=T0 + timedelta(hours=5), until=T0 + timedelta(hours=9))
        assert [g.leaf_index for g in (await query_events(conn, window)).items] == [8, 7, 6, 5]
        lb = EventFilter(legal_basis="Art. 91 LGP", purpose="beca")
        assert all(g.legal_basis == "Art. 91 LGP" for g in (await query_events(conn, lb)).items)

        # Pages of 7 cover everything exactly once.
        seen, before = [], None
        while True:
            page = await query_events(conn, EventFilter(), limit=7, before=before)
            seen += [g.leaf_index for g in page.items]
            if page.next_before is None:
                break
            before = page.next_before
        assert seen == list(range(39, -1, -1))

        summary = await stats(conn)
        assert summary.total == 40
        assert summary.by_type == {
            t: sum(e.type == t for e in expected) for t in {e.type for e in expected}
        }
        assert summary.by_consumer == {f"agencia-{k}": 14 - (k > 0) for k in range(3)}
        assert summary.by_outcome == {"denied": 10, "ok": 30}
        assert sum(summary.by_legal_basis.values()) == 40 and "-" in summary.by_legal_basis
        per_day: dict[str, int] = {}
        for e in expected:
            day = e.at.strftime("%Y-%m-%d")
            per_day[day] = per_day.get(day, 0) + 1
        assert summary.per_day == per_day
        narrowed = await stats(conn, EventFilter(consumer="agencia-0"))
        assert narrowed.total == 14 and narrowed.by_consumer == {"agencia-0": 14}


# ---------------------------------------------------------------------------------------------
# Export, verify, tampering
# ---------------------------------------------------------------------------------------------


async def test_export_then_verify_passes(ledger: Ledger) -> None:
    await build(ledger, [5, 11, 3])
    async with ledger.engine.connect() as conn:
        latest = await latest_checkpoint(conn)
        middle = await checkpoint_at(conn, 16)
    assert latest is not None and middle is not None
    lines = await export_lines(ledger.engine)
    assert len(lines) == 19
    key = base64.b64encode(ledger.public_key).decode()
    progressed: list[int] = []
    result = verify_export(lines, latest.note, key, progress=progressed.append)
    assert result.ok, result.message()
    assert result.leaves_read == 19 and sum(progressed) == sum(len(x) for x in lines)
    # An older checkpoint verifies against a longer export (prefix), reporting the rest.
    older = verify_export(lines, middle.note, key)
    assert older.ok and older.extra_leaves == 3
    # Export bounded by a historical size; never beyond the tree.
    assert len(await export_lines(ledger.engine, tree_size=5)) == 5
    with pytest.raises(ProofRequestError, match="tamaño actual es 19"):
        await export_lines(ledger.engine, tree_size=20)


async def test_tampered_leaf_is_detected_by_verify(ledger: Ledger) -> None:
    await build(ledger, [8, 8])
    async with ledger.engine.connect() as conn:
        latest = await latest_checkpoint(conn)
    assert latest is not None
    original = await ledger.all_leaves()
    forged = original[5].replace(b"agencia-2", b"agencia-0")
    assert forged != original[5]
    async with ledger.engine.begin() as conn:
        await conn.execute(update(leaves).where(leaves.c.leaf_index == 5).values(leaf=forged))
    result = verify_export(
        await export_lines(ledger.engine), latest.note, base64.b64encode(ledger.public_key).decode()
    )
    assert not result.ok
    assert result.mismatch is not None and "alterada" in result.mismatch.reason
    # A citizen's inclusion proof for the forged leaf no longer verifies either.
    async with ledger.engine.connect() as conn:
        proof = await inclusion_proof(conn, 5, latest.size)
    assert not verify_inclusion(leaf_hash(forged), 5, latest.size, proof.hashes, latest.root)


async def test_deleted_leaf_is_detected_by_verify(ledger: Ledger) -> None:
    await build(ledger, [10])
    async with ledger.engine.connect() as conn:
        latest = await latest_checkpoint(conn)
    assert latest is not None
    async with ledger.engine.begin() as conn:
        await conn.execute(delete(leaves).where(leaves.c.leaf_index == 4))
    lines = [item.json_line() async for item in export_leaves(ledger.engine)]
    result = verify_export(lines, latest.note, base64.b64encode(ledger.public_key).decode())
    assert not result.ok and result.mismatch is not None
    assert result.mismatch.leaf_index == 5 and result.mismatch.line == 5


def _monitor_check(runner: asyncio.Runner, ledger: Ledger, state_file: Path) -> MonitorResult:
    client = httpx.Client(transport=ledger_transport(runner, ledger.engine, ledger.key))
    with Monitor("https://carpeta.test", state_file, client=client) as monitor:
        return monitor.check_once()


def test_monitor_follows_the_real_log_and_alarms_on_node_tampering(
    database_url: str, tmp_path: Path
) -> None:
    state_file = tmp_path / "witness.json"
    with asyncio.Runner() as runner:
        ledger = runner.run(open_ledger(database_url))
        try:
            runner.run(build(ledger, [5]))
            first = _monitor_check(runner, ledger, state_file)
            assert first.status is MonitorStatus.FIRST_RUN
            runner.run(build(ledger, [6, 2], start=5))
            advanced = _monitor_check(runner, ledger, state_file)
            assert advanced.status is MonitorStatus.ADVANCED, advanced.message
            again = _monitor_check(runner, ledger, state_file)
            assert again.status is MonitorStatus.UNCHANGED

            # Tamper with a node the next consistency proof (13 → 20) needs: (2, 2) = [8, 12).
            async def tamper() -> None:
                async with ledger.engine.begin() as conn:
                    await conn.execute(
                        update(nodes)
                        .where(nodes.c.level == 2, nodes.c.idx == 2)
                        .values(hash=b"\x42" * 32)
                    )

            runner.run(tamper())
            runner.run(build(ledger, [7], start=13))
            alarm = _monitor_check(runner, ledger, state_file)
            assert alarm.status is MonitorStatus.INCONSISTENT and alarm.exit_code == 2
            assert "ALERTA" in alarm.message
            # State still holds the last verified checkpoint (13 leaves), so it keeps alarming.
            assert '"size": 13' in state_file.read_text()
        finally:
            runner.run(ledger.engine.dispose())


def test_monitor_alarms_on_rewritten_history_and_rollback(
    database_url: str, tmp_path: Path
) -> None:
    """An insider rewrites a leaf, recomputes every node and re-signs: a fork at equal size."""
    state_file = tmp_path / "witness.json"
    with asyncio.Runner() as runner:
        ledger = runner.run(open_ledger(database_url))
        try:
            runner.run(build(ledger, [9, 3]))
            ok = _monitor_check(runner, ledger, state_file)
            assert ok.status is MonitorStatus.FIRST_RUN

            async def rewrite() -> None:
                forged = make_event(1000).to_leaf()
                async with ledger.engine.begin() as conn:
                    await conn.execute(
                        update(leaves).where(leaves.c.leaf_index == 2).values(leaf=forged)
                    )
                    rows = await conn.execute(select(leaves.c.leaf).order_by(leaves.c.leaf_index))
                    compact = CompactRange()
                    completed = compact.append_many([leaf_hash(bytes(r[0])) for r in rows])
                    await conn.execute(delete(nodes))
                    await conn.execute(
                        nodes.insert(), [{"level": a, "idx": b, "hash": h} for a, b, h in completed]
                    )
                    await conn.execute(update(state).values(root=compact.root()))
                    note = sign_checkpoint(
                        Checkpoint(ORIGIN, compact.size, compact.root()), ORIGIN, ledger.key
                    )
                    await conn.execute(
                        update(checkpoints)
                        .where(checkpoints.c.tree_size == compact.size)
                        .values(root=compact.root(), note=note)
                    )

            runner.run(rewrite())
            fork = _monitor_check(runner, ledger, state_file)
            assert fork.status is MonitorStatus.FORK and fork.exit_code == 2
            assert fork.evidence is not None and fork.evidence.startswith(ORIGIN)

            async def roll_back() -> None:
                async with ledger.engine.begin() as conn:
                    await conn.execute(delete(checkpoints).where(checkpoints.c.tree_size > 9))

            runner.run(roll_back())
            rollback = _monitor_check(runner, ledger, state_file)
            assert rollback.status is MonitorStatus.ROLLBACK and rollback.exit_code == 2
        finally:
            runner.run(ledger.engine.dispose())


def test_verify_cli_reads_files_and_exits_1_on_tampering(database_url: str, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        ledger = runner.run(open_ledger(database_url))
        try:
            runner.run(build(ledger, [4, 4]))

            async def latest_note() -> str:
                async with ledger.engine.connect() as conn:
                    found = await latest_checkpoint(conn)
                assert found is not None
                return found.note

            (tmp_path / "cp.txt").write_text(runner.run(latest_note()))
            (tmp_path / "key.txt").write_text(base64.b64encode(ledger.public_key).decode())
            export = tmp_path / "export.jsonl"
            export.write_bytes(b"".join(runner.run(export_lines(ledger.engine))))
            args = [
                "verify",
                "--export",
                str(export),
                "--checkpoint",
                str(tmp_path / "cp.txt"),
                "--public-key",
                str(tmp_path / "key.txt"),
            ]
            good = CliRunner().invoke(ledger_group, args)
            assert good.exit_code == 0, good.output
            assert "Verificado" in good.output

            lines = export.read_bytes().splitlines(keepends=True)
            rnd = random.Random(4)
            victim = rnd.randrange(len(lines))
            lines[victim] = lines[victim].replace(b'"leaf":"ey', b'"leaf":"Zy', 1)
            export.write_bytes(b"".join(lines))
            bad = CliRunner().invoke(ledger_group, args)
            assert bad.exit_code == 1
            assert "NO verificado" in bad.output
        finally:
            runner.run(ledger.engine.dispose())


def test_stream_verify_handles_a_binary_stream() -> None:
    key = Ed25519PrivateKey.generate()
    leaves_ = [make_event(i).to_leaf() for i in range(3)]
    root = root_from_leaf_hashes([leaf_hash(x) for x in leaves_])
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, root), ORIGIN, key)
    data = b"".join(
        b'{"leaf_index": %d, "leaf": "%s"}\n' % (i, base64.b64encode(x))
        for i, x in enumerate(leaves_)
    )
    raw_key = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    assert verify_export_file(io.BytesIO(data), note, raw_key).ok
