"""``Idempotency-Key`` on a real app and a real database (SQLite and PostgreSQL).

Principals come from real access tokens (``bearer_or_address`` + ``claims_of``); time from a
settable clock, so the 24 h expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.types import Scope
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eidentity.assurance import AssuranceLevel
from eidentity.clock import SettableClock
from eidentity.guards import STATE_KEY, claims_of, requires_citizen
from eidentity.tokens import AccessTokens, KeyRing, SigningKey
from wallet import db
from wallet.lowband import (
    IdempotencyConfig,
    LowbandCompressionConfig,
    bearer_or_address,
    idempotency_records,
    lowband_metadata,
    purge_idempotency_records,
)
from wallet.lowband.replays import CLAIMED, KeyInFlight, KeyReused, ReplayStore, StoredResponse
from wallet.problems import ApiProblem, exception_handlers

ISSUER = "https://carpeta.test"


@dataclass
class World:
    """What the handlers did, so tests can tell a replay from a second execution."""

    runs: dict[str, int] = field(default_factory=dict)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def ran(self, name: str) -> int:
        self.runs[name] = self.runs.get(name, 0) + 1
        return self.runs[name]


def world_of(request: Request[Any, Any, Any]) -> World:
    world: World = request.app.state["world"]
    return world


@post("/consents", guards=[requires_citizen()], sync_to_thread=False)
def grant(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> Response[Any]:
    n = world_of(request).ran("grant")
    who = claims_of(request).subject
    return Response(
        {"consent": n, "who": who, "echo": data},
        status_code=201,
        headers={"Location": f"/consents/{n}"},
    )


@post("/anonymous", sync_to_thread=False)
def anonymous(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return {"n": world_of(request).ran("anonymous")}


@post("/slow")
async def slow(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, int]:
    world = world_of(request)
    n = world.ran("slow")
    world.entered.set()
    await world.release.wait()
    return {"n": n}


@post("/fail", sync_to_thread=False)
def fail(request: Request[Any, Any, Any]) -> None:
    world_of(request).ran("fail")
    raise RuntimeError("boom")


@post("/busy", sync_to_thread=False)
def busy(request: Request[Any, Any, Any]) -> Response[dict[str, int]]:
    return Response({"n": world_of(request).ran("busy")}, status_code=429)


@put("/things/{thing_id:str}", sync_to_thread=False)
def put_thing(request: Request[Any, Any, Any], thing_id: FromPath[str]) -> dict[str, Any]:
    return {"thing": thing_id, "n": world_of(request).ran("put")}


@delete("/things/{thing_id:str}", status_code=200, sync_to_thread=False)
def delete_thing(request: Request[Any, Any, Any], thing_id: FromPath[str]) -> dict[str, Any]:
    return {"n": world_of(request).ran("delete")}


@post("/token", sync_to_thread=False)
def token(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    n = world_of(request).ran("token")
    return Response({"refresh_token": f"secret-{n}"}, headers={"Cache-Control": "no-store"})


@post("/refused", sync_to_thread=False)
def refused(request: Request[Any, Any, Any]) -> None:
    world_of(request).ran("refused")
    raise ApiProblem(400, "invalid-request", "Los datos enviados no son válidos.")


@post("/opted-out", sync_to_thread=False, opt={"idempotency": False})
def opted_out(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"n": world_of(request).ran("opted-out")}


@get("/things", sync_to_thread=False)
def list_things(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"n": world_of(request).ran("get")}


@dataclass
class Rig:
    http: httpx.AsyncClient
    app: Litestar
    world: World
    clock: SettableClock
    tokens: AccessTokens
    sessions: async_sessionmaker[AsyncSession]
    lookups: list[int]

    def citizen(self, citizen_id: str) -> dict[str, str]:
        token = self.tokens.issue_for_citizen(
            citizen_id, AssuranceLevel.LOW, ["otp"], int(self.clock.now().timestamp())
        )
        return {"Authorization": f"Bearer {token}"}

    def agency(self, client_id: str) -> dict[str, str]:
        token = self.tokens.issue_for_client(
            client_id, ["consent:request"], int(self.clock.now().timestamp())
        )
        return {"Authorization": f"Bearer {token}"}

    async def records(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(idempotency_records))
            return int(count or 0)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(lowband_metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
    clock = SettableClock()
    tokens = AccessTokens(
        KeyRing([SigningKey.from_private_key(Ed25519PrivateKey.generate(), 0)]),
        ISSUER,
        ISSUER,
        300,
        now=lambda: clock.now().timestamp(),
    )
    sessions = db.session_factory(engine)
    lookups: list[int] = []

    def sessions_of(scope: Scope) -> async_sessionmaker[AsyncSession]:
        lookups.append(1)
        found: async_sessionmaker[AsyncSession] = scope["app"].state["sessions"]
        return found

    def address(request: Request[Any, Any, Any]) -> str:
        return request.client.host if request.client else "unknown"

    world = World()
    app = Litestar(
        [
            grant,
            anonymous,
            slow,
            fail,
            busy,
            put_thing,
            delete_thing,
            list_things,
            token,
            refused,
            opted_out,
        ],
        exception_handlers=exception_handlers,
        compression_config=LowbandCompressionConfig(
            backend="brotli",
            brotli_gzip_fallback=True,
            idempotency=IdempotencyConfig(
                sessions=sessions_of, principal=bearer_or_address(address), now=clock.now
            ),
        ),
        logging_config=None,
    )
    app.state["sessions"] = sessions
    app.state["world"] = world
    app.state[STATE_KEY] = tokens
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield Rig(http, app, world, clock, tokens, sessions, lookups)


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def test_a_retry_replays_the_first_answer(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("k-1")}
    first = await rig.http.post("/consents", json={"purpose": "beca"}, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers

    retry = await rig.http.post("/consents", json={"purpose": "beca"}, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.headers["location"] == first.headers["location"] == "/consents/1"
    assert rig.world.runs["grant"] == 1


async def test_the_same_key_for_another_request_is_422(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("k-2")}
    assert (await rig.http.post("/consents", json={"a": 1}, headers=headers)).status_code == 201
    for other in (
        rig.http.post("/consents", json={"a": 2}, headers=headers),  # other body
        rig.http.post("/consents?x=1", json={"a": 1}, headers=headers),  # other target
        rig.http.put("/things/1", json={"a": 1}, headers=headers),  # other method and path
    ):
        response = await other
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "https://carpeta.gob.mx/problems/idempotency-key-reused"
        assert problem["title"] == "Esta clave de idempotencia ya se usó con otra solicitud."
    assert rig.world.runs["grant"] == 1


async def test_keys_are_scoped_per_principal(rig: Rig) -> None:
    body = {"purpose": "beca"}
    ana = await rig.http.post("/consents", json=body, headers={**rig.citizen("ana"), **key("k")})
    beto = await rig.http.post("/consents", json=body, headers={**rig.citizen("beto"), **key("k")})
    assert ana.status_code == beto.status_code == 201
    assert "idempotent-replayed" not in beto.headers  # Beto never sees Ana's answer
    assert ana.json()["who"] == "ana" and beto.json()["who"] == "beto"
    assert rig.world.runs["grant"] == 2

    # An agency and anonymous callers from two addresses: four more scopes.
    agency = await rig.http.post("/anonymous", json={}, headers={**rig.agency("sat"), **key("k")})
    here = await rig.http.post("/anonymous", json={}, headers=key("k"))
    assert agency.json() == {"n": 1} and here.json() == {"n": 2}
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app, client=("10.9.8.7", 4000)),
        base_url="http://t",
    )
    async with elsewhere:
        there = await elsewhere.post("/anonymous", json={}, headers=key("k"))
    assert there.json() == {"n": 3}
    again_here = await rig.http.post("/anonymous", json={}, headers=key("k"))
    assert again_here.json() == {"n": 2} and again_here.headers["idempotent-replayed"] == "true"


async def test_a_duplicate_while_the_first_runs_is_409(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("slow-1")}
    first = asyncio.create_task(rig.http.post("/slow", json={"x": 1}, headers=headers))
    await asyncio.wait_for(rig.world.entered.wait(), timeout=10)

    duplicate = await rig.http.post("/slow", json={"x": 1}, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.headers["retry-after"] == "1"
    assert duplicate.json()["type"].endswith("/idempotency-key-in-flight")
    assert duplicate.json()["title"] == (
        "Una solicitud con esta clave de idempotencia todavía está en proceso."
    )

    rig.world.release.set()
    assert (await first).json() == {"n": 1}
    replay = await rig.http.post("/slow", json={"x": 1}, headers=headers)
    assert replay.json() == {"n": 1} and replay.headers["idempotent-replayed"] == "true"
    assert rig.world.runs["slow"] == 1


async def test_many_concurrent_duplicates_run_the_action_once(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("burst")}
    rig.world.release.set()
    answers = await asyncio.gather(
        *(rig.http.post("/slow", json={"x": 1}, headers=headers) for _ in range(8))
    )
    assert rig.world.runs["slow"] == 1
    assert {a.status_code for a in answers} <= {200, 201, 409}
    assert sum(a.status_code == 201 for a in answers) >= 1


async def test_server_errors_and_retryable_answers_are_not_stored(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("f")}
    for expected_runs in (1, 2):
        response = await rig.http.post("/fail", headers=headers)
        assert response.status_code == 500
        assert rig.world.runs["fail"] == expected_runs
    headers = {**rig.citizen("ana"), **key("b")}
    assert (await rig.http.post("/busy", headers=headers)).status_code == 429
    assert (await rig.http.post("/busy", headers=headers)).json() == {"n": 2}
    assert await rig.records() == 0


async def test_answers_expire_after_24_hours(rig: Rig) -> None:
    headers = {**rig.citizen("ana"), **key("day")}
    assert (await rig.http.post("/consents", json={}, headers=headers)).json()["consent"] == 1
    rig.clock.advance(timedelta(hours=23, minutes=59).total_seconds())
    headers = {**rig.citizen("ana"), **key("day")}  # a fresh token, same citizen
    replay = await rig.http.post("/consents", json={}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    rig.clock.advance(timedelta(minutes=2).total_seconds())
    headers = {**rig.citizen("ana"), **key("day")}
    fresh = await rig.http.post("/consents", json={}, headers=headers)
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["consent"] == 2


async def test_purge_removes_only_expired_records(rig: Rig) -> None:
    for name in ("a", "b"):
        await rig.http.post("/anonymous", json={}, headers=key(name))
    rig.clock.advance(timedelta(hours=12).total_seconds())
    await rig.http.post("/anonymous", json={}, headers=key("c"))
    rig.clock.advance(timedelta(hours=12, seconds=1).total_seconds())
    async with rig.sessions() as session, session.begin():
        assert await purge_idempotency_records(session, rig.clock.now()) == 2
    assert await rig.records() == 1


@pytest.mark.parametrize(
    ("value", "status"),
    [("x" * 255, 200), ('"quoted-key"', 200), ("x" * 256, 400), ("", 400), ("tab\tkey", 400)],
)
async def test_key_format(rig: Rig, value: str, status: int) -> None:
    response = await rig.http.post("/anonymous", json={}, headers=key(value))
    assert response.status_code == (201 if status == 200 else status)
    if status == 400:
        assert response.json()["type"].endswith("/idempotency-key-invalid")
        assert response.json()["title"] == "La clave de idempotencia no es válida."


async def test_put_and_delete_are_covered_and_get_ignores_the_key(rig: Rig) -> None:
    headers = key("put-1")
    assert (await rig.http.put("/things/7", headers=headers)).json() == {"thing": "7", "n": 1}
    again = await rig.http.put("/things/7", headers=headers)
    assert again.json() == {"thing": "7", "n": 1} and again.headers["idempotent-replayed"]
    assert (await rig.http.delete("/things/7", headers=key("del-1"))).json() == {"n": 1}
    assert (await rig.http.delete("/things/7", headers=key("del-1"))).json() == {"n": 1}
    assert (await rig.http.get("/things", headers=key("g"))).json() == {"n": 1}
    assert (await rig.http.get("/things", headers=key("g"))).json() == {"n": 2}


async def test_no_key_means_no_database_work(rig: Rig) -> None:
    await rig.http.post("/anonymous", json={})
    await rig.http.post("/consents", json={}, headers=rig.citizen("ana"))
    await rig.http.get("/things")
    assert rig.lookups == []
    await rig.http.post("/anonymous", json={}, headers=key("one"))
    assert rig.lookups == [1]


async def test_a_bad_token_is_refused_and_nothing_is_recorded(rig: Rig) -> None:
    headers = {"Authorization": "Bearer not-a-jwt", **key("k")}
    response = await rig.http.post("/consents", json={}, headers=headers)
    assert response.status_code == 401
    assert await rig.records() == 0


async def test_msgpack_requests_replay_as_msgpack(rig: Rig) -> None:
    headers = {
        **rig.citizen("ana"),
        **key("mp"),
        "Content-Type": "application/msgpack",
        "Accept": "application/msgpack",
    }
    body = msgspec.msgpack.encode({"purpose": "beca"})
    first = await rig.http.post("/consents", content=body, headers=headers)
    retry = await rig.http.post("/consents", content=body, headers=headers)
    assert first.headers["content-type"] == retry.headers["content-type"] == "application/msgpack"
    assert msgspec.msgpack.decode(retry.content)["echo"] == {"purpose": "beca"}
    assert retry.content == first.content and retry.headers["idempotent-replayed"] == "true"


async def test_a_claim_whose_lease_ran_out_can_be_taken_over(engine: AsyncEngine) -> None:
    """A process that died mid-request leaves an in-flight row; it blocks only for the lease."""
    clock = SettableClock()
    store = ReplayStore(
        db.session_factory(engine),
        now=clock.now,
        ttl=timedelta(hours=24),
        lease=timedelta(minutes=2),
    )
    assert await store.claim("r", "f") is CLAIMED
    with pytest.raises(KeyInFlight):
        await store.claim("r", "f")
    with pytest.raises(KeyReused):
        await store.claim("r", "another request")
    clock.advance(121)
    assert await store.claim("r", "f") is CLAIMED
    await store.complete("r", 201, [("content-type", "application/json")], b"{}")
    replay = await store.claim("r", "f")
    assert replay == StoredResponse(201, [("content-type", "application/json")], b"{}")


async def test_no_store_answers_and_opted_out_routes_are_never_recorded(rig: Rig) -> None:
    """Token responses carry secrets (refresh tokens are only ever stored hashed)."""
    first = await rig.http.post("/token", headers=key("t"))
    second = await rig.http.post("/token", headers=key("t"))
    assert first.json() == {"refresh_token": "secret-1"}
    assert second.json() == {"refresh_token": "secret-2"}
    for expected in (1, 2):
        assert (await rig.http.post("/refused", headers=key("r"))).status_code == 400
        assert rig.world.runs["refused"] == expected
    assert (await rig.http.post("/opted-out", headers=key("o"))).json() == {"n": 1}
    assert (await rig.http.post("/opted-out", headers=key("o"))).json() == {"n": 2}
    assert await rig.records() == 0
