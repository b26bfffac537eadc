"""The consent loop from both sides through HTTP (SQLite and PostgreSQL): an agency asks, the
citizen answers, data is released only under a live consent or a registered legal basis,
every permit and refusal is a ledger event, receipts verify against the JWKS, webhooks are
signed and delivered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from consent.artefact import ConsentArtefact, chain_problems
from consent.receipt import verify_receipt
from consent.storage import ConsentUse, WebhookDelivery, versions_of
from eidentity.clock import SettableClock
from ledger.storage import leaves, queue
from tests.conftest import Outbox
from tests.integration.agencies import TestAgency, agency_headers, register
from tests.integration.helpers import bearer, enrol, in_app_loop, services_of, sign_in_otp
from tests.integration.test_ledger_http import wait_for_size
from wallet.agencies.registry import LegalBasis
from wallet.consents.webhooks import SIGNATURE_HEADER, verify_detached

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"
OTHER_CURP = "PICD861230HSLCRV02"
OTHER_PHONE = "+525587654321"
ACTA = {
    "curp": CURP,
    "category": "acta_nacimiento",
    "title": "Acta de nacimiento",
    "data": {"numero_acta": "00412"},
}


IMSS = TestAgency("imss", "IMSS")


async def _world(
    client: AsyncTestClient[Any], outbox: Outbox
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """RENAPO holds the birth certificate; IMSS wants it; the citizen is signed in."""
    await enrol(client, CURP, PHONE)
    me = bearer((await sign_in_otp(client, outbox, CURP, PHONE))["access_token"])
    renapo, imss = TestAgency("renapo", "RENAPO"), IMSS
    await register(
        client, renapo, categories=("acta_nacimiento",), purposes=("verificacion_identidad",)
    )
    await register(
        client,
        imss,
        categories=("acta_nacimiento", "expediente_clinico"),
        purposes=("alta_beneficiario",),
    )
    renapo_h = await agency_headers(client, renapo)
    assert (
        await client.put("/api/v1/agency/records/ACTA-1", json=ACTA, headers=renapo_h)
    ).status_code == 201
    return me, renapo_h, await agency_headers(client, imss)


def _request_body(**overrides: Any) -> dict[str, Any]:
    return {
        "curp": CURP,
        "categories": ["acta_nacimiento"],
        "purpose": "alta_beneficiario",
        "purpose_text": "Dar de alta a tu hijo como beneficiario",
        "duration_days": 30,
        **overrides,
    }


async def _ask(client: AsyncTestClient[Any], headers: dict[str, str], **data: Any) -> Any:
    """A data request (by default IMSS's usual one); ``data`` overrides body fields."""
    return await client.post(
        "/api/v1/agency/data-requests",
        json={"curp": CURP, "category": "acta_nacimiento", "purpose": "alta_beneficiario", **data},
        headers=headers,
    )


async def test_the_whole_loop(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    me, _, imss = await _world(client, outbox)
    # Without consent: refused, and the refusal is itself logged.
    refused = await _ask(client, imss)
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["type"].endswith("/consent-required")
    assert problem["reason"] == "no-consent"
    assert problem["consent_request"] == "/api/v1/agency/consent-requests"
    # The agency asks; the citizen gets an SMS (no personal data) and a pending request.
    created = await client.post(
        "/api/v1/agency/consent-requests", json=_request_body(), headers=imss
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert created.json()["status"] == "requested"
    await asyncio.sleep(0.05)
    sms = outbox.messages()[-1]
    assert sms["to"] == PHONE and "permiso" in sms["text"] and CURP not in sms["text"]
    pending = (await client.get("/api/v1/me/consent-requests", headers=me)).json()
    assert [p["consent_id"] for p in pending] == [request_id]
    assert pending[0]["consumer_name"] == "IMSS"
    assert pending[0]["purpose"]["text"] == "Dar de alta a tu hijo como beneficiario"
    # Still refused while pending.
    assert (await _ask(client, imss)).status_code == 403
    approved = await client.post(f"/api/v1/me/consent-requests/{request_id}/approve", headers=me)
    assert approved.status_code == 200, approved.text
    consent = approved.json()
    assert consent["status"] == "active" and consent["consent_id"] == request_id
    # The receipt is a JWS of the artefact, signed with a key in our JWKS.
    jwks = (await client.get("/.well-known/jwks.json")).json()
    artefact = verify_receipt(consent["receipt"], jwks)
    assert artefact["status"] == "active" and artefact["data_principal"] != CURP
    # Agency polls the status.
    status = (
        await client.get(f"/api/v1/agency/consent-requests/{request_id}", headers=imss)
    ).json()
    assert status["status"] == "active"
    # Release: the records, a receipt, the ledger anchor.
    released = await _ask(client, imss)
    assert released.status_code == 200, released.text
    body = released.json()
    assert [r["data"] for r in body["records"]] == [ACTA["data"]]
    assert body["records"][0]["issuer"] == "renapo"
    assert body["basis"] == {"consent_id": request_id}
    assert body["ledger"]["queue_id"] > 0
    # Once: the same consent cannot be used twice.
    again = await _ask(client, imss)
    assert again.status_code == 403 and again.json()["reason"] == "already-used"
    # The citizen sees it all in the activity, with the agency's name.
    await wait_for_size(client, 6)
    activity = (await client.get("/api/v1/me/activity", headers=me)).json()
    types = [i["event"]["type"] for i in activity["items"]]
    for expected in (
        "record.published",
        "data.denied",
        "consent.requested",
        "consent.granted",
        "data.released",
    ):
        assert expected in types
    released_item = next(i for i in activity["items"] if i["event"]["type"] == "data.released")
    assert released_item["consumer_name"] == "IMSS"
    assert released_item["event"]["consent_id"] == request_id


async def test_revoke_pause_resume_and_deny(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    me, _, imss = await _world(client, outbox)
    body = _request_body(frequency={"unit": "day", "value": 5})
    request_id = (
        await client.post("/api/v1/agency/consent-requests", json=body, headers=imss)
    ).json()["id"]
    await client.post(f"/api/v1/me/consent-requests/{request_id}/approve", headers=me)
    assert (await _ask(client, imss)).status_code == 200
    paused = await client.post(f"/api/v1/me/consents/{request_id}/pause", headers=me)
    assert paused.json()["status"] == "paused"
    r = await _ask(client, imss)
    assert r.status_code == 403 and r.json()["reason"] == "paused"
    resumed = await client.post(f"/api/v1/me/consents/{request_id}/resume", headers=me)
    assert resumed.json()["status"] == "active"
    assert (await _ask(client, imss, consent_id=request_id)).status_code == 200
    revoked = await client.post(f"/api/v1/me/consents/{request_id}/revoke", headers=me)
    assert revoked.json()["status"] == "revoked"
    r = await _ask(client, imss, consent_id=request_id)
    assert r.status_code == 403 and r.json()["reason"] == "revoked"
    # Illegal transitions are clear 409 problems.
    r = await client.post(f"/api/v1/me/consents/{request_id}/resume", headers=me)
    assert r.status_code == 409 and r.json()["type"].endswith("/consent-transition-not-allowed")
    # A denied request never permits.
    second = (
        await client.post("/api/v1/agency/consent-requests", json=_request_body(), headers=imss)
    ).json()["id"]
    denied = await client.post(f"/api/v1/me/consent-requests/{second}/deny", headers=me)
    assert denied.json()["status"] == "denied"
    r = await _ask(client, imss, consent_id=second)
    assert r.status_code == 403 and r.json()["reason"] == "denied"
    consents = (await client.get("/api/v1/me/consents", headers=me)).json()
    assert {c["consent_id"]: c["status"] for c in consents["items"]} == {
        request_id: "revoked",
        second: "denied",
    }


async def test_frequency_and_expiry(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    me, _, imss = await _world(client, outbox)
    body = _request_body(frequency={"unit": "day", "value": 2}, duration_days=3)
    consent_id = (
        await client.post("/api/v1/agency/consent-requests", json=body, headers=imss)
    ).json()["id"]
    await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)
    statuses = [(await _ask(client, imss)).status_code for _ in range(3)]
    assert statuses == [200, 200, 403]
    assert (await _ask(client, imss)).json()["reason"] == "frequency-exhausted"
    clock.advance(86400 + 1)
    imss = await agency_headers(client, IMSS)  # access tokens live 10 minutes
    assert (await _ask(client, imss)).status_code == 200
    clock.advance(3 * 86400)
    imss = await agency_headers(client, IMSS)
    me = bearer((await sign_in_otp(client, outbox, CURP, PHONE))["access_token"])
    r = await _ask(client, imss)
    assert r.status_code == 403 and r.json()["reason"] in {"expired", "no-consent"}
    listed = (await client.get("/api/v1/me/consents", headers=me)).json()["items"]
    assert listed[0]["status"] == "expired"


async def test_over_asking_is_refused_and_the_citizen_is_warned(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _, imss = await _world(client, outbox)
    r = await client.post(
        "/api/v1/agency/consent-requests",
        json=_request_body(categories=["acta_nacimiento", "constancia_situacion_fiscal"]),
        headers=imss,
    )
    assert r.status_code == 403 and r.json()["type"].endswith("/consent-over-ask")
    assert r.json()["categories"] == ["constancia_situacion_fiscal"]
    r = await client.post(
        "/api/v1/agency/consent-requests", json=_request_body(purpose="mercadotecnia"), headers=imss
    )
    assert r.status_code == 403 and r.json()["purposes"] == ["mercadotecnia"]
    notices = (await client.get("/api/v1/me/notices", headers=me)).json()["items"]
    assert [n["kind"] for n in notices] == ["over-ask", "over-ask"]
    assert (await client.get("/api/v1/me/consent-requests", headers=me)).json() == []


async def test_wrong_purpose_category_other_citizen_and_wrong_side(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _, imss = await _world(client, outbox)
    consent_id = (
        await client.post("/api/v1/agency/consent-requests", json=_request_body(), headers=imss)
    ).json()["id"]
    await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)
    r = await _ask(client, imss, purpose="otra_cosa", consent_id=consent_id)
    assert r.status_code == 403 and r.json()["reason"] == "purpose-mismatch"
    # A category the catalogue does not have is a bad request, not a refusal, and it is
    # answered alone even when it shares a group commit with good requests.
    mixed = await asyncio.gather(
        _ask(client, imss, category="no_existe", consent_id=consent_id),
        _ask(client, imss, consent_id=consent_id),
    )
    assert mixed[0].status_code == 422
    assert mixed[0].json()["type"].endswith("/category-unknown")
    assert mixed[1].status_code == 200, mixed[1].text
    r = await _ask(client, imss, category="expediente_clinico", consent_id=consent_id)
    assert r.status_code == 403 and r.json()["reason"] == "category-not-covered"
    # Another citizen's CURP with this consent id: the consent is not theirs.
    await enrol(client, OTHER_CURP, OTHER_PHONE)
    r = await _ask(client, imss, curp=OTHER_CURP, consent_id=consent_id)
    assert r.status_code == 403 and r.json()["reason"] in {
        "consent-of-other-subject",
        "consent-not-found",
    }
    # Another citizen cannot act on my consent (404 like an unknown id).
    other = bearer((await sign_in_otp(client, outbox, OTHER_CURP, OTHER_PHONE))["access_token"])
    r = await client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers=other)
    assert r.status_code == 404
    # An agency on citizen routes, a citizen on agency routes.
    assert (
        await client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers=imss)
    ).status_code == 403
    assert (await _ask(client, me, purpose="x")).status_code == 403
    # Another agency cannot read IMSS's request.
    sat = TestAgency("sat")
    await register(client, sat)
    r = await client.get(
        f"/api/v1/agency/consent-requests/{consent_id}", headers=await agency_headers(client, sat)
    )
    assert r.status_code == 404


async def test_legal_basis_needs_no_consent_and_is_shown_with_the_article(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _, _ = await _world(client, outbox)
    sat = TestAgency("sat", "SAT")
    await register(
        client,
        sat,
        categories=("acta_nacimiento",),
        purposes=("verificacion_identidad",),
        legal_bases=(
            LegalBasis(
                "acta_nacimiento",
                "verificacion_identidad",
                "Art. 27 Código Fiscal de la Federación",
            ),
        ),
    )
    r = await _ask(client, await agency_headers(client, sat), purpose="verificacion_identidad")
    assert r.status_code == 200, r.text
    assert r.json()["basis"] == {"legal_basis": "Art. 27 Código Fiscal de la Federación"}
    await wait_for_size(client, 2)
    activity = (await client.get("/api/v1/me/activity", headers=me)).json()
    item = next(i for i in activity["items"] if i["event"]["type"] == "data.legal_basis")
    assert item["event"]["legal_basis"] == "Art. 27 Código Fiscal de la Federación"
    assert item["consumer_name"] == "SAT"


async def test_sensitive_categories_need_a_stronger_sign_in(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _, imss = await _world(client, outbox)
    consent_id = (
        await client.post(
            "/api/v1/agency/consent-requests",
            json=_request_body(categories=["expediente_clinico"]),
            headers=imss,
        )
    ).json()["id"]
    r = await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)
    assert r.status_code == 401
    assert 'acr_values="substantial"' in r.headers["www-authenticate"]
    assert r.json()["type"].endswith("/step-up-required")
    # Saying no never needs a stronger sign-in.
    assert (
        await client.post(f"/api/v1/me/consent-requests/{consent_id}/deny", headers=me)
    ).status_code == 200
    r = await client.post(
        "/api/v1/me/consents",
        json={
            "consumer": "imss",
            "categories": ["expediente_clinico"],
            "purpose": "alta_beneficiario",
            "valid_until": (datetime.now(UTC) + timedelta(days=5)).isoformat(),
        },
        headers=me,
    )
    assert r.status_code == 401


async def test_citizen_grants_proactively(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    me, _, imss = await _world(client, outbox)
    valid_until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    r = await client.post(
        "/api/v1/me/consents",
        json={
            "consumer": "imss",
            "categories": ["acta_nacimiento"],
            "purpose": "alta_beneficiario",
            "valid_until": valid_until,
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["receipt"].count(".") == 2
    assert (await _ask(client, imss)).status_code == 200
    # Widening an agency's mandate is refused.
    r = await client.post(
        "/api/v1/me/consents",
        json={
            "consumer": "imss",
            "categories": ["acta_nacimiento"],
            "purpose": "mercadotecnia",
            "valid_until": valid_until,
        },
        headers=me,
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/outside-agency-mandate")


async def test_one_ledger_event_per_action(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    me, _, imss = await _world(client, outbox)  # 1 event: record.published
    services = services_of(client)

    async def events() -> int:
        # One statement, one snapshot (the sequencer moves events concurrently).
        queued = select(func.count()).select_from(queue).scalar_subquery()
        integrated = select(func.count()).select_from(leaves).scalar_subquery()
        async with services.sessions() as session:
            row = (await session.execute(select(queued, integrated))).one()
            return int(row[0]) + int(row[1])

    before = in_app_loop(client, events)
    consent_id = (
        await client.post("/api/v1/agency/consent-requests", json=_request_body(), headers=imss)
    ).json()["id"]
    await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)
    await _ask(client, imss)  # released
    await _ask(client, imss)  # denied (already used)
    await client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers=me)
    # A refused action (illegal transition) adds nothing.
    await client.post(f"/api/v1/me/consents/{consent_id}/pause", headers=me)
    assert in_app_loop(client, events) - before == 5


async def test_webhooks_are_signed_and_delivered(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _, imss = await _world(client, outbox)
    services = services_of(client)
    received: list[httpx.Request] = []

    def agency_endpoint(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(500 if len(received) == 1 else 204)

    async def set_webhook() -> None:
        async with services.sessions() as session:
            from wallet.models import Agency

            agency = await session.get(Agency, "imss")
            assert agency is not None
            agency.webhook_url = "https://imss.example/carpeta-webhook"
            await session.commit()

    in_app_loop(client, set_webhook)
    services.webhooks.transport = httpx.MockTransport(agency_endpoint)
    consent_id = (
        await client.post("/api/v1/agency/consent-requests", json=_request_body(), headers=imss)
    ).json()["id"]
    await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)

    async def deliver() -> int:
        return await services.webhooks.deliver_due()

    in_app_loop(client, deliver)  # first attempt fails (500), retried later
    services.clock.advance(120)  # type: ignore[attr-defined]
    in_app_loop(client, deliver)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert len(received) >= 2
    for request in received:
        assert verify_detached(jwks, request.headers[SIGNATURE_HEADER], request.content)
        assert not verify_detached(jwks, request.headers[SIGNATURE_HEADER], request.content + b" ")
    statuses = [json.loads(r.content)["status"] for r in received]
    assert "requested" in statuses and "active" in statuses

    async def log() -> list[WebhookDelivery]:
        async with services.sessions() as session:
            return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))

    rows = in_app_loop(client, log)
    assert all(row.delivered_at is not None for row in rows)
    assert rows[0].attempts == 2 and rows[0].last_status == 204


@pytest.mark.parametrize("action", ["approve", "deny"])
async def test_unknown_request_ids_answer_404(
    client: AsyncTestClient[Any], outbox: Outbox, action: str
) -> None:
    me, _, _ = await _world(client, outbox)
    r = await client.post(f"/api/v1/me/consent-requests/nope/{action}", headers=me)
    assert r.status_code == 404


async def test_uses_move_counters_not_versions(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    """Each release moves the consent's counters and logs the use; the version chain (status
    changes only) still verifies; the receipt the citizen gets carries the live counters; and
    a delta-synced phone learns of the new counts."""
    me, _, imss = await _world(client, outbox)
    body = _request_body(frequency={"unit": "day", "value": 5})
    consent_id = (
        await client.post("/api/v1/agency/consent-requests", json=body, headers=imss)
    ).json()["id"]
    approved = (
        await client.post(f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me)
    ).json()
    assert approved["version"] == 2 and approved["use_count"] == 0
    synced = (await client.get("/api/v1/me/consents", headers=me)).json()
    anchors = []
    for _ in range(3):
        clock.advance(61)
        released = await _ask(client, imss, consent_id=consent_id)
        assert released.status_code == 200, released.text
        anchors.append(released.json()["ledger"]["queue_id"])

    changed = (
        await client.get("/api/v1/me/consents", params={"since": synced["next_cursor"]}, headers=me)
    ).json()
    [consent] = changed["items"]
    assert consent["consent_id"] == consent_id
    assert consent["version"] == 2 and consent["status"] == "active"
    assert consent["use_count"] == 3 and consent["last_used_at"] is not None
    jwks = (await client.get("/.well-known/jwks.json")).json()
    signed = verify_receipt(consent["receipt"], jwks)
    assert signed["use_count"] == 3 and signed["last_used_at"] == consent["last_used_at"]
    assert signed["version"] == 2
    # The agency's view agrees.
    polled = (
        await client.get(f"/api/v1/agency/consent-requests/{consent_id}", headers=imss)
    ).json()
    assert polled["use_count"] == 3 and polled["receipt"] == consent["receipt"]

    async def stored() -> tuple[list[Any], list[Any]]:
        async with services_of(client).sessions() as session:
            versions = await versions_of(session, consent_id)
            uses = list(
                await session.scalars(
                    select(ConsentUse)
                    .where(ConsentUse.consent_id == consent_id)
                    .order_by(ConsentUse.id)
                )
            )
            return [v.artefact for v in versions], uses

    versions, uses = in_app_loop(client, stored)
    assert [u.queue_id for u in uses] == anchors
    assert [u.used_at for u in uses] == sorted(u.used_at for u in uses)
    # Revoking makes version 3 on top of the unchanged chain.
    revoked = (await client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers=me)).json()
    assert revoked["version"] == 3 and revoked["use_count"] == 3
    versions, _ = in_app_loop(client, stored)
    chain = [ConsentArtefact.from_dict(json.loads(v)) for v in versions]
    assert [a.version for a in chain] == [1, 2, 3]
    assert chain_problems(chain) == ()
    assert chain[-1].use_count == 3
    refused = await _ask(client, imss, consent_id=consent_id)
    assert refused.status_code == 403 and refused.json()["reason"] == "revoked"
