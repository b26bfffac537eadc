"""``?since=`` delta sync on a real table, on SQLite and PostgreSQL.

A client that syncs page by page (any page sizes, at any moments between writes) must end
with exactly the rows a full read returns — whatever sequence of upserts, withdrawals and
re-publications happened, and also with writers running concurrently.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped

from eidentity.dbtypes import UTCDateTime
from wallet import db
from wallet.lowband import (
    Cursor,
    LowbandCompressionConfig,
    Page,
    PageRequest,
    lowband_metadata,
    next_change_seq,
    read_changes,
)
from wallet.problems import exception_handlers

KEY = b"sync-test-key-0123456789abcdef!!"

notes_metadata = MetaData()
notes = Table(
    "lowband_test_notes",
    notes_metadata,
    Column("id", String(100), primary_key=True),
    Column("owner", String(80), nullable=False),
    Column("body", String(200), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=True),
    Index("ix_lowband_test_notes_owner_seq", "owner", "change_seq"),
)


class Base(DeclarativeBase):
    metadata = notes_metadata


class Note(Base):
    """The same table through the ORM: ``read_changes`` accepts both styles."""

    __table__ = notes
    id: Mapped[str]
    owner: Mapped[str]
    body: Mapped[str]
    change_seq: Mapped[int]
    deleted_at: Mapped[datetime | None]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(lowband_metadata.create_all)
        await connection.run_sync(notes_metadata.create_all)
    yield engine
    await engine.dispose()


# ---------------------------------------------------------------- writes and the syncing client


async def upsert(
    sessions: async_sessionmaker[AsyncSession], owner: str, id_: str, body: str
) -> None:
    async with sessions() as session, session.begin():
        seq = await next_change_seq(session, owner)
        changed = await session.execute(
            update(notes)
            .where(notes.c.id == id_)
            .values(body=body, change_seq=seq, deleted_at=None)
            .returning(notes.c.id)
        )
        if changed.first() is None:
            await session.execute(
                notes.insert().values(id=id_, owner=owner, body=body, change_seq=seq)
            )


async def withdraw(sessions: async_sessionmaker[AsyncSession], owner: str, id_: str) -> None:
    async with sessions() as session, session.begin():
        seq = await next_change_seq(session, owner)
        await session.execute(
            update(notes)
            .where(notes.c.id == id_, notes.c.deleted_at.is_(None))
            .values(deleted_at=datetime.now(UTC), change_seq=seq)
        )


async def full_read(sessions: async_sessionmaker[AsyncSession], owner: str) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(
            select(notes.c.id, notes.c.body).where(
                notes.c.owner == owner, notes.c.deleted_at.is_(None)
            )
        )
        return {row.id: row.body for row in rows}


@dataclass
class Client:
    """What the phone keeps: its copy and its cursor."""

    owner: str
    orm: bool
    state: dict[str, str]
    cursor: str | None = None
    pages: int = 0

    async def pull(self, sessions: async_sessionmaker[AsyncSession], limit: int) -> bool:
        """One page; True when there is more to fetch right away."""
        request = PageRequest.parse(self.cursor, limit, key=KEY, scope=f"notes:{self.owner}")
        async with sessions() as session:
            if self.orm:
                changes = await read_changes(
                    session,
                    select(Note).where(Note.owner == self.owner),
                    request,
                    seq=Note.change_seq,
                    deleted_at=Note.deleted_at,
                    row_id=Note.id,
                )
                page = changes.page(lambda note: (note.id, note.body))
            else:
                core = await read_changes(
                    session,
                    select(notes).where(notes.c.owner == self.owner),
                    request,
                    seq=notes.c.change_seq,
                    deleted_at=notes.c.deleted_at,
                    row_id=notes.c.id,
                )
                page = core.page(lambda row: (row.id, row.body))
        assert len(page.items) + len(page.deleted) <= limit
        for id_, body in page.items:
            self.state[id_] = body
        for id_ in page.deleted:
            self.state.pop(id_, None)
        self.cursor = page.next_cursor
        self.pages += 1
        return page.has_more

    async def sync(self, sessions: async_sessionmaker[AsyncSession], limit: int) -> None:
        while await self.pull(sessions, limit):
            pass


# ---------------------------------------------------------------------------------- properties

ids = st.sampled_from([f"n{i}" for i in range(8)])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), ids, st.text(alphabet="abcñé ", max_size=8)),
        st.tuples(st.just("withdraw"), ids, st.just("")),
        st.tuples(st.just("pull"), st.sampled_from(["1", "2", "3", "50"]), st.just("")),
    ),
    max_size=40,
)


@pytest.mark.parametrize("orm", [False, True], ids=["core", "orm"])
@settings(max_examples=75)
@given(ops=operations, final_limit=st.integers(1, 5))
async def test_since_sync_converges_to_a_full_read(
    engine: AsyncEngine, orm: bool, ops: list[tuple[str, str, str]], final_limit: int
) -> None:
    sessions = db.session_factory(engine)
    owner = f"citizen:{uuid.uuid4()}"  # a fresh owner per example: examples don't interfere
    client = Client(owner=owner, orm=orm, state={})
    latecomer = Client(owner=owner, orm=orm, state={})  # first sync after everything
    for kind, arg, body in ops:
        if kind == "upsert":
            await upsert(sessions, owner, f"{owner}/{arg}", body)
        elif kind == "withdraw":
            await withdraw(sessions, owner, f"{owner}/{arg}")
        else:
            await client.pull(sessions, int(arg))
    await client.sync(sessions, final_limit)
    await latecomer.sync(sessions, final_limit)
    truth = await full_read(sessions, owner)
    assert client.state == truth
    assert latecomer.state == truth


async def test_sync_converges_with_concurrent_writers(engine: AsyncEngine) -> None:
    """Writers that hold their change number a while before committing, and a reader pulling
    small pages meanwhile: the per-owner counter row orders commits, nothing is skipped."""
    sessions = db.session_factory(engine)
    owner = f"agency:{uuid.uuid4()}"
    rng = random.Random(7)

    async def writer(name: str) -> None:
        for n in range(8):
            async with sessions() as session, session.begin():
                seq = await next_change_seq(session, owner)
                await asyncio.sleep(rng.random() / 200)  # commit later than others take numbers
                id_ = f"{owner}/{rng.randrange(6)}"
                changed = await session.execute(
                    update(notes)
                    .where(notes.c.id == id_)
                    .values(body=f"{name}{n}", change_seq=seq, deleted_at=None)
                    .returning(notes.c.id)
                )
                if changed.first() is None:
                    await session.execute(
                        notes.insert().values(
                            id=id_, owner=owner, body=f"{name}{n}", change_seq=seq
                        )
                    )
            if n % 3 == 2:
                await withdraw(sessions, owner, f"{owner}/{rng.randrange(6)}")

    client = Client(owner=owner, orm=False, state={})
    writers = asyncio.gather(*(writer(f"w{i}") for i in range(4)))
    while not writers.done():
        await client.pull(sessions, 2)
        await asyncio.sleep(0.001)
    await writers
    await client.sync(sessions, 2)
    assert client.state == await full_read(sessions, owner)


async def test_counters_count_per_owner(engine: AsyncEngine) -> None:
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        assert [await next_change_seq(session, "a") for _ in range(3)] == [1, 2, 3]
        assert await next_change_seq(session, "b") == 1
    async with sessions() as session, session.begin():
        assert await next_change_seq(session, "a") == 4
    async with sessions() as session:
        await next_change_seq(session, "a")
        await session.rollback()  # a rolled-back number is given out again
    async with sessions() as session, session.begin():
        assert await next_change_seq(session, "a") == 5


async def test_a_first_sync_skips_old_tombstones_later_syncs_get_new_ones(
    engine: AsyncEngine,
) -> None:
    sessions = db.session_factory(engine)
    owner = f"citizen:{uuid.uuid4()}"
    for i in range(3):
        await upsert(sessions, owner, f"{owner}/{i}", "v")
    await withdraw(sessions, owner, f"{owner}/0")
    client = Client(owner=owner, orm=True, state={})
    request = PageRequest.parse(None, 50, key=KEY, scope=f"notes:{owner}")
    async with sessions() as session:
        first = await read_changes(
            session,
            select(Note).where(Note.owner == owner),
            request,
            seq=Note.change_seq,
            deleted_at=Note.deleted_at,
            row_id=Note.id,
        )
    assert first.deleted == []  # the phone never had n0
    assert sorted(n.id for n in first.items) == [f"{owner}/1", f"{owner}/2"]
    client.cursor = first.next_cursor
    client.state = {n.id: n.body for n in first.items}
    await withdraw(sessions, owner, f"{owner}/1")
    await client.pull(sessions, 50)
    assert client.state == {f"{owner}/2": "v"}


# ------------------------------------------------------------------------------ over HTTP


class NoteOut(msgspec.Struct):
    id: str
    body: str


@get("/notes")
async def list_notes(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[async_sessionmaker[AsyncSession]],
    since: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
) -> Page[NoteOut]:
    owner = request.headers["x-owner"]
    page = PageRequest.parse(since, limit, key=KEY, scope=f"notes:{owner}")
    async with sessions() as session:
        changes = await read_changes(
            session,
            select(Note).where(Note.owner == owner),
            page,
            seq=Note.change_seq,
            deleted_at=Note.deleted_at,
            row_id=Note.id,
        )
    return changes.page(lambda note: NoteOut(id=note.id, body=note.body))


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    sessions = db.session_factory(engine)

    def provide_sessions() -> async_sessionmaker[AsyncSession]:
        return sessions

    app = Litestar(
        [list_notes],
        dependencies={"sessions": Provide(provide_sessions, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        compression_config=LowbandCompressionConfig(backend="brotli", brotli_gzip_fallback=True),
        logging_config=None,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_pages_over_http_and_304_when_nothing_changed(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    sessions = db.session_factory(engine)
    owner = f"citizen:{uuid.uuid4()}"
    for i in range(3):
        await upsert(sessions, owner, f"{owner}/{i}", f"v{i}")
    headers = {"x-owner": owner}
    first = await http.get("/notes", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "deleted", "next_cursor", "has_more"}
    assert body["has_more"] is True and len(body["items"]) == 2
    second = await http.get(
        "/notes", params={"since": body["next_cursor"], "limit": 2}, headers=headers
    )
    tail = second.json()
    assert tail["has_more"] is False and [i["body"] for i in tail["items"]] == ["v2"]
    # Polling again with the same cursor and nothing new: same bytes, so a 304.
    poll = await http.get("/notes", params={"since": tail["next_cursor"]}, headers=headers)
    assert poll.json() == {
        "items": [],
        "deleted": [],
        "next_cursor": tail["next_cursor"],
        "has_more": False,
    }
    again = await http.get(
        "/notes",
        params={"since": tail["next_cursor"]},
        headers={**headers, "If-None-Match": poll.headers["etag"]},
    )
    assert again.status_code == 304


def _forge(token: str, seq: int) -> str:
    """A cursor with another position and the old tag: what a tampering client would send."""
    import base64

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload = bytes([raw[0]]) + msgspec.msgpack.encode([seq, 0])
    return base64.urlsafe_b64encode(payload + raw[-12:]).rstrip(b"=").decode()


async def test_invalid_and_forged_cursors_are_400_problems(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    owner = f"citizen:{uuid.uuid4()}"
    mine = Cursor(seq=1).encode(KEY, f"notes:{owner}")
    someone_elses = Cursor(seq=1).encode(KEY, "notes:someone-else")
    for since in ["nonsense", _forge(mine, 10**6), someone_elses, mine + "A", "a" * 500]:
        response = await http.get("/notes", params={"since": since}, headers={"x-owner": owner})
        assert response.status_code == 400, since
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "https://carpeta.gob.mx/problems/invalid-cursor"
        assert problem["title"] == "El cursor de sincronización no es válido."
    assert (
        await http.get("/notes", params={"since": mine}, headers={"x-owner": owner})
    ).status_code == 200


@pytest.mark.parametrize("limit", ["0", "201", "-5"])
async def test_invalid_limits_are_400_problems(http: httpx.AsyncClient, limit: str) -> None:
    response = await http.get("/notes", params={"limit": limit}, headers={"x-owner": "o"})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-limit")


async def test_non_numeric_limit_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/notes", params={"limit": "many"}, headers={"x-owner": "o"})
    assert response.status_code == 400


async def test_the_envelope_is_in_the_openapi_schema(http: httpx.AsyncClient) -> None:
    response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    schemas = response.json()["components"]["schemas"]
    envelope = next(v for k, v in schemas.items() if k.startswith("Page"))
    assert set(envelope["properties"]) == {"items", "deleted", "next_cursor", "has_more"}
