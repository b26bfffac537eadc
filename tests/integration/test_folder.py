"""Agencies publish, citizens read: the folder through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Outbox
from tests.integration.agencies import TestAgency, agency_headers, register, token_for
from tests.integration.helpers import bearer, enrol, in_app_loop, services_of, sign_in_otp
from wallet.agencies.registry import AgencyRegistry

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"
OTHER_CURP = "PICD861230HSLCRV02"
OTHER_PHONE = "+525587654321"

PROCEDURE = {
    "curp": CURP,
    "title": "Declaración anual 2025",
    "status": "action_required",
    "steps": [{"title": "Presentada", "done": True}, {"title": "Devolución", "done": False}],
    "next_action": "Confirma tu cuenta CLABE",
    "due_date": "2026-04-30",
    "contact": "55 627 22 728",
}
RECORD = {
    "curp": CURP,
    "category": "constancia_situacion_fiscal",
    "title": "Constancia de situación fiscal",
    "data": {"rfc": "BAAI810809AB1", "regimen": "Sueldos y salarios", "cp": "03100"},
    "issued_at": "2026-01-15T10:00:00Z",
}


@pytest.fixture
async def sat(client: AsyncTestClient[Any]) -> TestAgency:
    agency = TestAgency("sat", "Servicio de Administración Tributaria")
    await register(client, agency)
    return agency


async def _citizen(
    client: AsyncTestClient[Any], outbox: Outbox, curp: str = CURP, phone: str = PHONE
) -> dict[str, str]:
    await enrol(client, curp, phone)
    return bearer((await sign_in_otp(client, outbox, curp, phone))["access_token"])


async def test_agency_publishes_and_citizen_sees_it(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    me = await _citizen(client, outbox)
    headers = await agency_headers(client, sat)
    r = await client.put("/api/v1/agency/procedures/DA-2025-1", json=PROCEDURE, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["created"] is True
    r = await client.put("/api/v1/agency/records/CSF-1", json=RECORD, headers=headers)
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    assert len(digest) == 64

    summary = (await client.get("/api/v1/me/summary", headers=me)).json()
    assert summary["open_procedures"] == 1
    assert summary["action_required"] == 1
    assert summary["records"] == 1

    procedures = (await client.get("/api/v1/me/procedures", headers=me)).json()
    [item] = procedures["items"]
    assert (
        item["agency"] == "sat" and item["agency_name"] == "Servicio de Administración Tributaria"
    )
    assert item["status"] == "action_required" and item["due_date"] == "2026-04-30"
    assert item["steps"][0] == {"title": "Presentada", "done": True}
    assert procedures["deleted"] == [] and procedures["has_more"] is False

    records = (await client.get("/api/v1/me/records", headers=me)).json()
    [record] = records["items"]
    assert "data" not in record  # lists stay light; content is one tap away
    assert record["category_name"] == "Constancia de situación fiscal"
    detail = (await client.get(f"/api/v1/me/records/{record['id']}", headers=me)).json()
    assert detail["data"] == RECORD["data"]
    assert detail["digest"] == digest


async def test_upsert_is_idempotent_and_updates_when_changed(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    headers = await agency_headers(client, sat)
    first = await client.put("/api/v1/agency/records/CSF-1", json=RECORD, headers=headers)
    again = await client.put("/api/v1/agency/records/CSF-1", json=RECORD, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["changed"] is False and again.json()["id"] == first.json()["id"]
    changed = await client.put(
        "/api/v1/agency/records/CSF-1",
        json={**RECORD, "data": {**RECORD["data"], "cp": "06600"}},
        headers=headers,
    )
    assert changed.status_code == 200 and changed.json()["changed"] is True
    assert changed.json()["digest"] != first.json()["digest"]


async def test_withdrawal_syncs_as_a_tombstone(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    me = await _citizen(client, outbox)
    headers = await agency_headers(client, sat)
    await client.put("/api/v1/agency/records/CSF-1", json=RECORD, headers=headers)
    full = (await client.get("/api/v1/me/records", headers=me)).json()
    record_id = full["items"][0]["id"]
    assert (await client.delete("/api/v1/agency/records/CSF-1", headers=headers)).status_code == 204
    delta = (
        await client.get("/api/v1/me/records", params={"since": full["next_cursor"]}, headers=me)
    ).json()
    assert delta["items"] == [] and delta["deleted"] == [record_id]
    assert (await client.get(f"/api/v1/me/records/{record_id}", headers=me)).status_code == 404
    assert (await client.get("/api/v1/me/summary", headers=me)).json()["records"] == 0
    # Withdrawing twice: it is gone.
    assert (await client.delete("/api/v1/agency/records/CSF-1", headers=headers)).status_code == 404


async def test_publishing_refusals(client: AsyncTestClient[Any], sat: TestAgency) -> None:
    headers = await agency_headers(client, sat)

    async def put(path: str, body: dict[str, Any]) -> Any:
        return await client.put(path, json=body, headers=headers)

    r = await put("/api/v1/agency/records/X1", {**RECORD, "curp": "BAAI810809HJCRCS09"})
    assert r.status_code == 422 and r.json()["type"].endswith("/curp-invalid")
    r = await put("/api/v1/agency/records/X1", {**RECORD, "category": "nss_imss"})
    assert r.status_code == 403 and r.json()["type"].endswith("/category-not-registered")
    r = await put("/api/v1/agency/records/X1", {**RECORD, "category": "no_existe"})
    assert r.status_code == 422 and r.json()["type"].endswith("/category-unknown")
    r = await put("/api/v1/agency/records/X1", {**RECORD, "data": {"blob": "x" * 70_000}})
    assert r.status_code == 413 and r.json()["type"].endswith("/record-too-large")
    r = await put("/api/v1/agency/records/X1", {**RECORD, "data": ["not", "an", "object"]})
    assert r.status_code == 400
    r = await put("/api/v1/agency/procedures/P1", {**PROCEDURE, "status": "perdido"})
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-request")
    r = await put("/api/v1/agency/procedures/P1", {**PROCEDURE, "extra": 1})
    assert r.status_code == 400
    assert (await put("/api/v1/agency/procedures/P1", PROCEDURE)).status_code == 201
    r = await put("/api/v1/agency/procedures/P1", {**PROCEDURE, "curp": OTHER_CURP})
    assert r.status_code == 409 and r.json()["type"].endswith("/external-id-conflict")
    r = await put("/api/v1/agency/procedures/bad%20id", PROCEDURE)
    assert r.status_code == 400


async def test_scopes_and_principal_kinds_are_enforced(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    publisher_only = TestAgency("imss")
    await register(client, publisher_only, scopes=("procedures:write",))
    headers = await agency_headers(client, publisher_only)
    assert (
        await client.put("/api/v1/agency/procedures/P1", json=PROCEDURE, headers=headers)
    ).status_code == 201
    r = await client.put(
        "/api/v1/agency/records/R1", json={**RECORD, "category": "acta_nacimiento"}, headers=headers
    )
    assert r.status_code == 403 and r.json()["type"].endswith("/insufficient-scope")
    # An agency token is not a citizen, and a citizen token is not an agency.
    assert (await client.get("/api/v1/me/summary", headers=headers)).status_code == 403
    me = await _citizen(client, outbox)
    r = await client.put("/api/v1/agency/procedures/P2", json=PROCEDURE, headers=me)
    assert r.status_code == 403
    assert (await client.put("/api/v1/agency/procedures/P2", json=PROCEDURE)).status_code == 401


async def test_messages_between_citizen_and_agency(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    me = await _citizen(client, outbox)
    headers = await agency_headers(client, sat)
    await client.put("/api/v1/agency/procedures/DA-1", json=PROCEDURE, headers=headers)
    procedure_id = (await client.get("/api/v1/me/procedures", headers=me)).json()["items"][0]["id"]
    r = await client.post(
        f"/api/v1/me/procedures/{procedure_id}/messages",
        json={"body": "Ya envié mi CLABE por correo, ¿la recibieron?"},
        headers=me,
    )
    assert r.status_code == 201 and r.json()["author"] == "citizen"
    inbox = (await client.get("/api/v1/agency/procedures/DA-1/messages", headers=headers)).json()
    assert [m["body"] for m in inbox] == ["Ya envié mi CLABE por correo, ¿la recibieron?"]
    r = await client.post(
        "/api/v1/agency/procedures/DA-1/messages",
        json={"body": "Sí, la estamos validando."},
        headers=headers,
    )
    assert r.status_code == 201
    detail = (await client.get(f"/api/v1/me/procedures/{procedure_id}", headers=me)).json()
    assert [(m["author"], m["body"]) for m in detail["messages"]] == [
        ("citizen", "Ya envié mi CLABE por correo, ¿la recibieron?"),
        ("agency", "Sí, la estamos validando."),
    ]
    r = await client.post(
        f"/api/v1/me/procedures/{procedure_id}/messages", json={"body": ""}, headers=me
    )
    assert r.status_code == 400
    # The agency's inbox is a delta feed across all its procedures.
    feed = (await client.get("/api/v1/agency/messages", headers=headers)).json()
    assert [(m["external_id"], m["author"]) for m in feed["items"]] == [
        ("DA-1", "citizen"),
        ("DA-1", "agency"),
    ]
    await client.post(
        f"/api/v1/me/procedures/{procedure_id}/messages", json={"body": "Gracias"}, headers=me
    )
    delta = (
        await client.get(
            "/api/v1/agency/messages", params={"since": feed["next_cursor"]}, headers=headers
        )
    ).json()
    assert [m["body"] for m in delta["items"]] == ["Gracias"]


async def test_export_holds_everything_about_me(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    me = await _citizen(client, outbox)
    headers = await agency_headers(client, sat)
    await client.put("/api/v1/agency/procedures/DA-1", json=PROCEDURE, headers=headers)
    await client.put("/api/v1/agency/records/CSF-1", json=RECORD, headers=headers)
    r = await client.get("/api/v1/me/export", headers=me)
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    doc = r.json()
    assert doc["person"]["curp"] == CURP
    assert doc["procedures"][0]["title"] == "Declaración anual 2025"
    assert doc["records"][0]["data"] == RECORD["data"]


async def test_agency_first_then_citizen_enrols(
    client: AsyncTestClient[Any], outbox: Outbox, sat: TestAgency
) -> None:
    headers = await agency_headers(client, sat)
    assert (
        await client.put(
            "/api/v1/agency/records/CSF-9", json={**RECORD, "curp": OTHER_CURP}, headers=headers
        )
    ).status_code == 201
    me = await _citizen(client, outbox, OTHER_CURP, OTHER_PHONE)
    assert (await client.get("/api/v1/me/summary", headers=me)).json()["records"] == 1


async def test_disabled_agency_and_rotated_keys(
    client: AsyncTestClient[Any], sat: TestAgency
) -> None:
    services = services_of(client)
    old = TestAgency("sat", key=sat.key)
    rotated = TestAgency("sat", kid="k2")

    async def set_jwks() -> None:
        async with services.sessions() as session:
            await AgencyRegistry().set_jwks(session, "sat", rotated.jwks(), services.clock.now())
            await session.commit()

    in_app_loop(client, set_jwks)
    assert await token_for(client, rotated)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": old.assertion(services.settings.issuer + "/oauth/token"),
    }
    r = await client.post("/oauth/token", data=form)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    async def disable() -> None:
        async with services.sessions() as session:
            await AgencyRegistry().set_disabled(session, "sat", True)
            await session.commit()

    in_app_loop(client, disable)
    form["client_assertion"] = rotated.assertion(services.settings.issuer + "/oauth/token")
    r = await client.post("/oauth/token", data=form)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_public_directory_lists_agencies_and_their_mandates(
    client: AsyncTestClient[Any], sat: TestAgency
) -> None:
    regulator = TestAgency("regulador")
    await register(client, regulator, categories=(), purposes=(), scopes=("ledger:audit",))
    r = await client.get("/api/v1/directory")
    assert r.status_code == 200
    body = r.json()
    assert [a["id"] for a in body["agencies"]] == ["sat"]  # regulators are not data consumers
    assert "acta_nacimiento" in body["agencies"][0]["categories"]
    sensitive = {c["code"] for c in body["categories"] if c["sensitive"]}
    assert "expediente_clinico" in sensitive
