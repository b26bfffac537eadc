"""Object-level authorization from the attacker's side, driven by Hypothesis.

A small world (three citizens, three agencies, each with its own objects) is built once per
database; Hypothesis then picks an attacker, a victim's object (or an id that exists nowhere)
and a route. Whatever it picks: no citizen or agency ever reads or changes another's object,
and a forbidden object answers exactly like an unknown one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from eidentity.clock import SettableClock
from tests.conftest import Outbox
from tests.integration.agencies import ASSERTION_TYPE, TestAgency
from wallet.agencies.registry import AgencyRegistry
from wallet.app import Services, create_app
from wallet.settings import Settings

CITIZENS = [
    ("BAAI810809HJCRCS02", "+525510000001"),
    ("PICD861230HSLCRV02", "+525510000002"),
    ("GECV901105HDFRHL00", "+525510000003"),
]
AGENCIES = ["sat", "imss", "sep"]


@dataclass
class World:
    client: TestClient[Any]
    citizen_tokens: list[str]
    agency_tokens: list[str]
    # per citizen: (procedure ids, record ids) visible to them
    procedures: list[list[str]]
    records: list[list[str]]
    # per agency: its external ids
    external: list[list[str]]


def _services(client: TestClient[Any]) -> Services:
    services: Services = client.app.state["services"]
    return services


@pytest.fixture
def world(tmp_path: Path, database_url: str, outbox: Outbox) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        sms_sink=f"file:{outbox.path}",
        log_format="text",
    )
    with TestClient(app=create_app(settings, clock=SettableClock())) as client:
        services = _services(client)

        async def setup() -> None:
            async with services.sessions() as session:
                for curp, phone in CITIZENS:
                    await services.registry.enrol(
                        session, curp=curp, phone=phone, now=services.clock.now(), via="cli"
                    )
                await session.commit()

        client.blocking_portal.call(setup)
        agencies = [TestAgency(a) for a in AGENCIES]
        for agency in agencies:

            async def register(agency: TestAgency = agency) -> None:
                async with services.sessions() as session:
                    await AgencyRegistry().add(
                        session,
                        agency_id=agency.id,
                        name=agency.id.upper(),
                        jwks=agency.jwks(),
                        categories=("acta_nacimiento",),
                        purposes=("tramite",),
                        now=services.clock.now(),
                    )
                    await session.commit()

            client.blocking_portal.call(register)
        agency_tokens = []
        for agency in agencies:
            r = client.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": agency.assertion(services.settings.issuer + "/oauth/token"),
                },
            )
            agency_tokens.append(r.json()["access_token"])
        citizen_tokens = []
        for curp, phone in CITIZENS:
            otp_id = client.post("/auth/curp/start", json={"curp": curp}).json()["otp_id"]
            time.sleep(0.05)  # the SMS leaves after the response
            code = outbox.last_code(to=phone)
            tokens = client.post("/auth/curp/verify", json={"otp_id": otp_id, "code": code}).json()
            citizen_tokens.append(tokens["access_token"])
        external: list[list[str]] = [[] for _ in agencies]
        for a, token in enumerate(agency_tokens):
            for c, (curp, _) in enumerate(CITIZENS):
                ext = f"{AGENCIES[a]}-{c}"
                auth = {"Authorization": f"Bearer {token}"}
                client.put(
                    f"/api/v1/agency/procedures/{ext}",
                    json={"curp": curp, "title": "Trámite", "status": "open"},
                    headers=auth,
                ).raise_for_status()
                client.put(
                    f"/api/v1/agency/records/{ext}",
                    json={
                        "curp": curp,
                        "category": "acta_nacimiento",
                        "title": "Acta",
                        "data": {"n": c},
                    },
                    headers=auth,
                ).raise_for_status()
                external[a].append(ext)
        procedures, records = [], []
        for token in citizen_tokens:
            auth = {"Authorization": f"Bearer {token}"}
            procedures.append(
                [p["id"] for p in client.get("/api/v1/me/procedures", headers=auth).json()["items"]]
            )
            records.append(
                [r["id"] for r in client.get("/api/v1/me/records", headers=auth).json()["items"]]
            )
        yield World(client, citizen_tokens, agency_tokens, procedures, records, external)


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in {"instance", "reference"}}


FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def test_citizens_never_reach_each_others_objects(world: World) -> None:
    client = world.client

    @FAST
    @given(
        attacker=st.integers(0, 2),
        victim=st.integers(0, 2),
        kind=st.sampled_from(["procedures", "records", "message"]),
        pick=st.integers(0, 10),
    )
    def check(attacker: int, victim: int, kind: str, pick: int) -> None:
        auth = {"Authorization": f"Bearer {world.citizen_tokens[attacker]}"}
        pool = world.records[victim] if kind == "records" else world.procedures[victim]
        target = pool[pick % len(pool)]
        unknown = str(uuid.uuid4())
        if kind == "message":
            seen = client.post(
                f"/api/v1/me/procedures/{target}/messages", json={"body": "hola"}, headers=auth
            )
            none = client.post(
                f"/api/v1/me/procedures/{unknown}/messages", json={"body": "hola"}, headers=auth
            )
        else:
            seen = client.get(f"/api/v1/me/{kind}/{target}", headers=auth)
            none = client.get(f"/api/v1/me/{kind}/{unknown}", headers=auth)
        if attacker == victim:
            assert seen.status_code in (200, 201)
            return
        assert seen.status_code == 404
        assert (none.status_code, _strip(none.json())) == (404, _strip(seen.json()))
        listed = client.get(
            f"/api/v1/me/{'records' if kind == 'records' else 'procedures'}", headers=auth
        ).json()
        assert target not in {item["id"] for item in listed["items"]}

    check()


def test_agencies_never_reach_each_others_objects(world: World) -> None:
    client = world.client

    @FAST
    @given(
        attacker=st.integers(0, 2),
        owner=st.integers(0, 2),
        pick=st.integers(0, 2),
        action=st.sampled_from(["delete-record", "delete-procedure", "messages", "answer"]),
    )
    def check(attacker: int, owner: int, pick: int, action: str) -> None:
        if attacker == owner:
            return
        auth = {"Authorization": f"Bearer {world.agency_tokens[attacker]}"}
        target = world.external[owner][pick]
        # The attacker has no object under the owner's external id (ids are per agency).
        calls = {
            "delete-record": lambda ext: client.delete(
                f"/api/v1/agency/records/{ext}", headers=auth
            ),
            "delete-procedure": lambda ext: client.delete(
                f"/api/v1/agency/procedures/{ext}", headers=auth
            ),
            "messages": lambda ext: client.get(
                f"/api/v1/agency/procedures/{ext}/messages", headers=auth
            ),
            "answer": lambda ext: client.post(
                f"/api/v1/agency/procedures/{ext}/messages", json={"body": "x"}, headers=auth
            ),
        }
        seen = calls[action](target)
        none = calls[action](f"no-existe-{uuid.uuid4().hex[:8]}")
        assert seen.status_code == 404
        assert _strip(seen.json()) == _strip(none.json())
        # and the owner's object is untouched
        owner_auth = {"Authorization": f"Bearer {world.agency_tokens[owner]}"}
        assert (
            client.get(
                f"/api/v1/agency/procedures/{target}/messages", headers=owner_auth
            ).status_code
            == 200
        )

    check()


def test_tokens_only_work_on_their_own_side(world: World) -> None:
    client = world.client

    @FAST
    @given(
        who=st.sampled_from(["citizen", "agency", "none", "garbage"]),
        index=st.integers(0, 2),
        route=st.sampled_from(
            [
                ("GET", "/api/v1/me"),
                ("GET", "/api/v1/me/summary"),
                ("GET", "/api/v1/me/records"),
                ("GET", "/api/v1/me/export"),
                ("PUT", "/api/v1/agency/procedures/zz"),
                ("PUT", "/api/v1/agency/records/zz"),
                ("GET", "/api/v1/agency/messages"),
            ]
        ),
    )
    def check(who: str, index: int, route: tuple[str, str]) -> None:
        method, path = route
        token = {
            "citizen": world.citizen_tokens[index],
            "agency": world.agency_tokens[index],
            "none": None,
            "garbage": "eyJhbGciOiJub25lIn0.e30.",
        }[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"curp": CITIZENS[0][0], "title": "x", "status": "open"} if method == "PUT" else None
        r = client.request(method, path, headers=headers, json=body)
        citizen_route = path.startswith("/api/v1/me")
        allowed = (who == "citizen" and citizen_route) or (who == "agency" and not citizen_route)
        if allowed:  # past the guard: whatever the body's fate, it is not an auth refusal
            assert r.status_code not in (401, 403), (who, route, r.text)
        else:
            assert r.status_code in (401, 403), (who, route, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert re.search(r"/problems/[a-z-]+$", r.json()["type"])

    check()
