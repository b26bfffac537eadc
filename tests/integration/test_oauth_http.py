"""Agencies get tokens over HTTP, on SQLite and on PostgreSQL (``database_url``).

A small app mounts the OAuth routes with the wallet's real problem handlers and media-type
check, real access tokens and the replay table on a real database; the client registry is the
in-memory fake of the ``ClientStore`` port. The tokens it issues are then tried on routes
guarded by ``requires_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar, Request, get
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eidentity.clock import SettableClock
from eidentity.guards import STATE_KEY, requires_client
from eidentity.models import IdentityBase
from eidentity.oauth import (
    REGULATOR_SCOPES,
    InMemoryClientStore,
    OAuthController,
    OAuthError,
    TokenEndpoint,
    oauth_metadata,
)
from eidentity.oauth.errors import InvalidClient, InvalidScope
from eidentity.tokens import AccessTokens, KeyRing, SigningKey
from tests.integration.helpers import bearer
from tests.unit.test_oauth_agency import ISSUER, TOKEN_URL, Agency, token_form
from wallet.db import create_engine, session_factory
from wallet.problems import exception_handlers
from wallet.web import check_request

FORM = {"content-type": "application/x-www-form-urlencoded"}


@get("/agency/records", guards=[requires_client("records:write")])
async def agency_records() -> dict[str, str]:
    return {"ok": "records"}


@get("/agency/procedures", guards=[requires_client("procedures:write")])
async def agency_procedures() -> dict[str, str]:
    return {"ok": "procedures"}


@get("/regulator/events", guards=[requires_client("ledger:audit")])
async def regulator_events() -> dict[str, str]:
    return {"ok": "events"}


@dataclass
class World:
    client: AsyncTestClient[Any]
    store: InMemoryClientStore
    clock: SettableClock
    sat: Agency

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    async def token(self, form: dict[str, str]) -> Any:
        return await self.client.post("/oauth/token", data=form, headers=FORM)


def build_app(database_url: str, endpoint: TokenEndpoint, tokens: AccessTokens) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The test client serves from its own event loop: the engine must be born there.
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.run_sync(IdentityBase.metadata.create_all)
        app.state["sessions"] = session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    async def provide_db_session(
        request: Request[Any, Any, Any],
    ) -> AsyncGenerator[AsyncSession, None]:
        sessions: async_sessionmaker[AsyncSession] = request.app.state["sessions"]
        async with sessions() as session:
            yield session

    app = Litestar(
        route_handlers=[
            OAuthController,
            oauth_metadata,
            agency_records,
            agency_procedures,
            regulator_events,
        ],
        lifespan=[lifespan],
        dependencies={
            "db_session": Provide(provide_db_session),
            "clock": Provide(lambda: endpoint.clock, sync_to_thread=False),
            "token_endpoint": Provide(lambda: endpoint, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        before_request=check_request,
    )
    app.state[STATE_KEY] = tokens
    return app


def make_tokens(clock: SettableClock) -> AccessTokens:
    ring = KeyRing([SigningKey.from_private_key(Ed25519PrivateKey.generate(), 0)])
    return AccessTokens(ring, ISSUER, ISSUER, 300, now=lambda: clock.now().timestamp())


@pytest.fixture
async def world(database_url: str, clock: SettableClock) -> AsyncIterator[World]:
    store = InMemoryClientStore()
    sat = Agency("sat", alg="ES256")
    store.put(sat.registered())
    tokens = make_tokens(clock)
    endpoint = TokenEndpoint(store, tokens, TOKEN_URL, ISSUER, clock)
    async with AsyncTestClient(app=build_app(database_url, endpoint, tokens)) as client:
        yield World(client=client, store=store, clock=clock, sat=sat)


def assert_problem(response: Any, error: type[OAuthError], status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + error.error)
    assert body["title"] == error.title
    assert body["status"] == status
    assert body["error"] == error.error
    assert body["error_description"].isascii() and body["error_description"]
    return body


def assert_invalid_client(response: Any) -> dict[str, Any]:
    body = assert_problem(response, InvalidClient, 401)
    assert response.headers["www-authenticate"].startswith("private_key_jwt")
    return body


# --- the good path --------------------------------------------------------------------------


async def test_agency_gets_a_token_that_opens_its_routes_only(world: World) -> None:
    r = await world.token(token_form(world.sat.assertion(world.now())))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    token = body["access_token"]
    r = await world.client.get("/agency/records", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"ok": "records"}
    r = await world.client.get("/regulator/events", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["type"].endswith("/insufficient-scope")


async def test_narrow_scope_token_is_refused_elsewhere(world: World) -> None:
    form = token_form(world.sat.assertion(world.now()), scope="records:write")
    r = await world.token(form)
    assert r.status_code == 200 and r.json()["scope"] == "records:write"
    token = r.json()["access_token"]
    assert (await world.client.get("/agency/records", headers=bearer(token))).status_code == 200
    r = await world.client.get("/agency/procedures", headers=bearer(token))
    assert r.status_code == 403 and "procedures:write" in r.json()["detail"]


async def test_regulator_client_reads_the_ledger_routes(world: World) -> None:
    regulator = Agency("sabg", alg="EdDSA", scopes=REGULATOR_SCOPES)
    world.store.put(regulator.registered())
    r = await world.token(token_form(regulator.assertion(world.now())))
    assert r.status_code == 200 and r.json()["scope"] == "ledger:audit"
    token = r.json()["access_token"]
    assert (await world.client.get("/regulator/events", headers=bearer(token))).status_code == 200
    assert (await world.client.get("/agency/records", headers=bearer(token))).status_code == 403


# --- refusals, as problem documents ---------------------------------------------------------


async def test_replayed_jti_is_refused(world: World) -> None:
    form = token_form(world.sat.assertion(world.now()))
    assert (await world.token(form)).status_code == 200
    body = assert_invalid_client(await world.token(form))
    assert "ya se usó" in body["detail"]


async def test_wrong_audience_is_refused(world: World) -> None:
    assertion = world.sat.assertion(world.now(), aud="https://otro.example/oauth/token")
    body = assert_invalid_client(await world.token(token_form(assertion)))
    assert TOKEN_URL in body["detail"]


async def test_expired_assertion_is_refused(world: World) -> None:
    assertion = world.sat.assertion(world.now(), lifetime=60)
    world.clock.advance(120)
    body = assert_invalid_client(await world.token(token_form(assertion)))
    assert "expiró" in body["detail"]


async def test_unknown_and_disabled_clients_are_refused_alike(world: World) -> None:
    unknown = Agency("desconocida", alg="ES256")
    disabled = Agency("bienestar", alg="ES256")
    world.store.put(disabled.registered(disabled=True))
    bodies = [
        assert_invalid_client(await world.token(token_form(agency.assertion(world.now()))))
        for agency in (unknown, disabled)
    ]
    assert bodies[0] == bodies[1]


async def test_key_rotation_switches_the_accepted_key(world: World) -> None:
    rotated = Agency("sat", alg="RS256", kid="2025")
    world.store.put(rotated.registered())
    assert_invalid_client(await world.token(token_form(world.sat.assertion(world.now()))))
    r = await world.token(token_form(rotated.assertion(world.now())))
    assert r.status_code == 200, r.text


async def test_scope_beyond_registration_is_invalid_scope(world: World) -> None:
    r = await world.token(token_form(world.sat.assertion(world.now()), scope="ledger:audit"))
    body = assert_problem(r, InvalidScope, 400)
    assert "ledger:audit" in body["detail"]
    assert "www-authenticate" not in r.headers


async def test_other_grant_type_is_unsupported(world: World) -> None:
    form = token_form(world.sat.assertion(world.now()), grant_type="password")
    r = await world.token(form)
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    assert r.json()["type"].endswith("/unsupported_grant_type")


async def test_repeated_parameter_is_invalid_request(world: World) -> None:
    form = token_form(world.sat.assertion(world.now()))
    raw = "&".join(f"{k}={v}" for k, v in form.items()) + "&grant_type=client_credentials"
    r = await world.client.post("/oauth/token", content=raw.encode(), headers=FORM)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert "grant_type" in r.json()["detail"]


async def test_json_body_is_refused_by_media_type(world: World) -> None:
    r = await world.client.post("/oauth/token", json=token_form("x"))
    assert r.status_code == 415
    assert "x-www-form-urlencoded" in r.json()["detail"]


async def test_empty_request_is_invalid_request(world: World) -> None:
    r = await world.client.post("/oauth/token")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_metadata_document(world: World) -> None:
    r = await world.client.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    meta = r.json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == TOKEN_URL
    assert meta["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]


# --- the replay race, on the database itself ------------------------------------------------


async def test_concurrent_replay_has_exactly_one_winner(
    database_url: str, clock: SettableClock
) -> None:
    """Two workers receive the same assertion at once: the primary key lets only one through."""
    store = InMemoryClientStore()
    sat = Agency("sat", alg="ES256")
    store.put(sat.registered())
    endpoint = TokenEndpoint(store, make_tokens(clock), TOKEN_URL, ISSUER, clock)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(IdentityBase.metadata.create_all)
        sessions = session_factory(engine)
        form: dict[str, str] = {}

        async def attempt() -> str:
            async with sessions() as session:
                try:
                    await endpoint.handle(session, form)
                    await session.commit()
                    return "token"
                except OAuthError as error:
                    await session.rollback()
                    return error.error

        for _ in range(3):
            form = token_form(sat.assertion(int(clock.now().timestamp())))
            outcomes = await asyncio.gather(*(attempt() for _ in range(4)))
            assert sorted(outcomes) == ["invalid_client"] * 3 + ["token"]
    finally:
        await engine.dispose()
