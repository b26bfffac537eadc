"""The folder on a prepaid plan: 304s, MessagePack, idempotent retries, and byte budgets.

Byte sizes are deterministic for a given dataset, so the SPEC budgets are asserted here:
``/api/v1/me/summary`` ≤ 512 B compressed; a typical dashboard (5 procedures, 10 records)
≤ 4 KB compressed for all its calls together.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from tests.conftest import Outbox
from tests.integration.agencies import TestAgency, agency_headers, register
from tests.integration.helpers import bearer, enrol, sign_in_otp

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"
BUDGET_REPORT: dict[str, int] = {}


async def _setup(
    client: AsyncTestClient[Any], outbox: Outbox
) -> tuple[dict[str, str], dict[str, str]]:
    await enrol(client, CURP, PHONE)
    me = bearer((await sign_in_otp(client, outbox, CURP, PHONE))["access_token"])
    agencies = {
        "sat": TestAgency("sat", "Servicio de Administración Tributaria (SAT)"),
        "imss": TestAgency("imss", "Instituto Mexicano del Seguro Social (IMSS)"),
        "renapo": TestAgency("renapo", "Registro Nacional de Población (RENAPO)"),
    }
    for agency in agencies.values():
        await register(
            client,
            agency,
            categories=(
                "acta_nacimiento",
                "constancia_situacion_fiscal",
                "nss_imss",
                "semanas_cotizadas",
            ),
        )
    headers = {key: await agency_headers(client, agency) for key, agency in agencies.items()}
    statuses = ["action_required", "open", "in_review", "resolved", "open"]
    for n in range(5):
        agency = list(agencies)[n % 3]
        r = await client.put(
            f"/api/v1/agency/procedures/TR-{n}",
            json={
                "curp": CURP,
                "title": f"Trámite de ejemplo número {n}: actualización de datos",
                "status": statuses[n],
                "steps": [
                    {"title": "Solicitud recibida", "done": True, "date": "2026-11-01"},
                    {"title": "Revisión de documentos", "done": n % 2 == 0},
                ],
                "next_action": "Presenta tu identificación oficial en la oficina"
                if n == 0
                else None,
                "due_date": "2026-12-31",
                "contact": "Atención ciudadana 800 000 0000",
            },
            headers=headers[agency],
        )
        assert r.status_code == 201, r.text
    categories = ["acta_nacimiento", "constancia_situacion_fiscal", "nss_imss", "semanas_cotizadas"]
    for n in range(10):
        agency = list(agencies)[n % 3]
        r = await client.put(
            f"/api/v1/agency/records/RG-{n}",
            json={
                "curp": CURP,
                "category": categories[n % 4],
                "title": f"Registro {n}",
                "data": {"folio": f"F-{n:06d}", "detalle": "dato de ejemplo " * 5},
                "issued_at": "2026-10-01T12:00:00Z",
            },
            headers=headers[agency],
        )
        assert r.status_code == 201, r.text
    return me, headers["sat"]


async def test_get_collections_answer_304_when_unchanged(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, sat = await _setup(client, outbox)
    for path in ("/api/v1/me", "/api/v1/me/summary", "/api/v1/me/procedures", "/api/v1/me/records"):
        first = await client.get(path, headers=me)
        assert first.status_code == 200
        tag = first.headers["etag"]
        again = await client.get(path, headers={**me, "If-None-Match": tag})
        assert again.status_code == 304, path
        assert again.content == b""
    # A change on the agency side changes the representation: 200 with a new tag.
    tag = (await client.get("/api/v1/me/summary", headers=me)).headers["etag"]
    await client.delete("/api/v1/agency/records/RG-0", headers=sat)
    changed = await client.get("/api/v1/me/summary", headers={**me, "If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag


async def test_msgpack_and_json_carry_the_same_data(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _ = await _setup(client, outbox)
    for path in ("/api/v1/me/summary", "/api/v1/me/procedures", "/api/v1/me/records"):
        as_json = (await client.get(path, headers=me)).json()
        packed = await client.get(path, headers={**me, "Accept": "application/msgpack"})
        assert packed.headers["content-type"].startswith("application/msgpack")
        decoded = msgspec.msgpack.decode(packed.content)
        # next_cursor differs per call only if the data changed; compare the rest exactly.
        assert decoded == as_json, path


async def test_msgpack_request_bodies_are_accepted(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _ = await _setup(client, outbox)
    procedure_id = (await client.get("/api/v1/me/procedures", headers=me)).json()["items"][0]["id"]
    r = await client.post(
        f"/api/v1/me/procedures/{procedure_id}/messages",
        content=msgspec.msgpack.encode({"body": "Enviado desde una conexión lenta"}),
        headers={**me, "Content-Type": "application/msgpack"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["body"] == "Enviado desde una conexión lenta"


async def test_retried_post_with_idempotency_key_is_replayed_not_repeated(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    me, _ = await _setup(client, outbox)
    procedure_id = (await client.get("/api/v1/me/procedures", headers=me)).json()["items"][0]["id"]
    path = f"/api/v1/me/procedures/{procedure_id}/messages"
    key = {"Idempotency-Key": "5f0c6a2e-1d7b-4f44-9d0a-7a1c2b3d4e5f"}
    first = await client.post(path, json={"body": "Hola"}, headers={**me, **key})
    second = await client.post(path, json={"body": "Hola"}, headers={**me, **key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    detail = (await client.get(f"/api/v1/me/procedures/{procedure_id}", headers=me)).json()
    assert [m["body"] for m in detail["messages"]] == ["Hola"]
    other = await client.post(path, json={"body": "Otra cosa"}, headers={**me, **key})
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


async def test_byte_budgets(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    """Sizes as transferred with brotli, as a phone asking `Accept-Encoding: br` receives."""
    me, _ = await _setup(client, outbox)
    compressed = {**me, "Accept-Encoding": "br"}
    summary = await client.get("/api/v1/me/summary", headers=compressed)
    assert summary.status_code == 200
    # Wire size: Content-Length is what crossed the network (httpx hands back decoded bytes).
    summary_bytes = int(summary.headers["content-length"])
    assert summary_bytes <= 512, summary_bytes
    total = 0
    for path in ("/api/v1/me/summary", "/api/v1/me/procedures", "/api/v1/me/records"):
        r = await client.get(path, headers=compressed)
        wire = int(r.headers["content-length"])
        if len(r.content) > 256:  # above the compression threshold it must travel compressed
            assert r.headers.get("content-encoding") == "br", path
            assert wire < len(r.content)
        total += wire
    assert total <= 4096, total
    BUDGET_REPORT.update({"summary": summary_bytes, "dashboard": total})
    print(json.dumps({"summary_bytes": summary_bytes, "dashboard_bytes": total}))
