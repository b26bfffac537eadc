"""The ledger through the app: record events land in the log, citizens get proofs that verify
with nothing but the public key, regulators search, count and export (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from litestar.testing import AsyncTestClient

from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.note import verify_note
from ledger.verify import verify_export
from tests.conftest import Outbox
from tests.integration.agencies import TestAgency, agency_headers, register
from tests.integration.helpers import bearer, enrol, sign_in_otp

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"
RECORD = {
    "curp": CURP,
    "category": "acta_nacimiento",
    "title": "Acta de nacimiento",
    "data": {"numero_acta": "00412", "lugar": "Ciudad de México"},
}


async def wait_for_size(client: AsyncTestClient[Any], size: int, timeout: float = 10.0) -> str:
    """The sequencer integrates within its merge delay; poll the public checkpoint."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get("/ledger/checkpoint")
        if r.status_code == 200 and int(r.text.splitlines()[1]) >= size:
            return r.text
        assert asyncio.get_running_loop().time() < deadline, "sequencer did not integrate in time"
        await asyncio.sleep(0.1)


async def _key(client: AsyncTestClient[Any]) -> dict[str, str]:
    body: dict[str, str] = (await client.get("/.well-known/carpeta-ledger")).json()
    return body


async def test_checkpoint_is_a_c2sp_note_verifiable_with_the_published_key(
    client: AsyncTestClient[Any],
) -> None:
    note = await wait_for_size(client, 0)
    r = await client.get("/ledger/checkpoint")
    assert r.headers["content-type"].startswith("text/plain")
    key = await _key(client)
    assert " " not in key["key_name"] and "+" not in key["key_name"]
    checkpoint = verify_note(note, key["key_name"], base64.b64decode(key["public_key"]))
    assert checkpoint.origin == key["origin"]
    lines = note.split("\n")
    assert lines[0] == key["origin"] and lines[3] == "" and lines[4].startswith("— ")


async def test_record_events_reach_the_citizen_with_proofs_that_verify(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    await enrol(client, CURP, PHONE)
    me = bearer((await sign_in_otp(client, outbox, CURP, PHONE))["access_token"])
    sat = TestAgency("sat", "Servicio de Administración Tributaria")
    await register(client, sat)
    headers = await agency_headers(client, sat)
    published = (await client.put("/api/v1/agency/records/A1", json=RECORD, headers=headers)).json()
    assert published["ledger"]["queue_id"] > 0
    updated = await client.put(
        "/api/v1/agency/records/A1",
        json={**RECORD, "data": {"numero_acta": "00413"}},
        headers=headers,
    )
    assert updated.json()["changed"] is True
    assert (await client.delete("/api/v1/agency/records/A1", headers=headers)).status_code == 204
    note = await wait_for_size(client, 3)
    key = await _key(client)
    checkpoint = verify_note(note, key["key_name"], base64.b64decode(key["public_key"]))

    activity = (await client.get("/api/v1/me/activity", headers=me)).json()
    assert [i["event"]["type"] for i in activity["items"]] == [
        "record.withdrawn",
        "record.updated",
        "record.published",
    ]
    assert activity["checkpoint"] == note
    for item in activity["items"]:
        leaf = base64.b64decode(item["leaf"])
        proof = [base64.b64decode(h) for h in item["inclusion"]]
        assert item["tree_size"] == checkpoint.size
        assert verify_inclusion(
            leaf_hash(leaf), item["leaf_index"], item["tree_size"], proof, checkpoint.root_hash
        )
        body = json.loads(leaf)
        assert body["provider"] == "sat" and body["categories"] == ["acta_nacimiento"]
        # Privacy by construction: no CURP, no citizen id, no record content in a leaf.
        assert CURP not in leaf.decode() and "00412" not in leaf.decode()
        assert len(body["subject"]) == 64
    summary = (await client.get("/api/v1/me/summary", headers=me)).json()
    assert summary["new_events"] == 3
    newest = activity["items"][0]["leaf_index"]
    seen = await client.get("/api/v1/me/summary", params={"seen": newest}, headers=me)
    assert seen.json()["new_events"] == 0
    # Delta: nothing newer than what the phone holds.
    delta = (await client.get("/api/v1/me/activity", params={"since": newest}, headers=me)).json()
    assert delta["items"] == []


async def test_public_proofs_and_their_refusals(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    sat = TestAgency("sat")
    await register(client, sat)
    headers = await agency_headers(client, sat)
    await client.put("/api/v1/agency/records/B1", json=RECORD, headers=headers)
    first_note = await wait_for_size(client, 1)
    for n in range(2, 6):
        await client.put(f"/api/v1/agency/records/B{n}", json=RECORD, headers=headers)
    second_note = await wait_for_size(client, 5)
    key = await _key(client)
    public = base64.b64decode(key["public_key"])
    first = verify_note(first_note, key["key_name"], public)
    second = verify_note(second_note, key["key_name"], public)
    r = await client.get(
        "/ledger/proofs/consistency", params={"first": first.size, "second": second.size}
    )
    body = r.json()
    assert body["first"] == first.size and body["second"] == second.size
    hashes = [base64.b64decode(h) for h in body["hashes"]]
    assert verify_consistency(first.size, second.size, first.root_hash, second.root_hash, hashes)
    r = await client.get(
        "/ledger/proofs/inclusion", params={"leaf_index": 0, "tree_size": second.size}
    )
    assert r.json()["leaf_index"] == 0 and len(r.json()["hashes"]) >= 1
    for params in (
        {"leaf_index": 99, "tree_size": second.size},
        {"leaf_index": 0, "tree_size": 10_000},
    ):
        bad = await client.get("/ledger/proofs/inclusion", params=params)
        assert bad.status_code == 400 and bad.headers["content-type"].startswith(
            "application/problem+json"
        )
    bad = await client.get("/ledger/proofs/consistency", params={"first": 5, "second": 2})
    assert bad.status_code == 400
    bad = await client.get("/ledger/proofs/inclusion", params={"leaf_index": "x", "tree_size": 1})
    assert bad.status_code == 400


async def test_regulator_searches_counts_and_exports_a_verifiable_log(
    client: AsyncTestClient[Any],
) -> None:
    sat, imss = TestAgency("sat"), TestAgency("imss")
    regulator = TestAgency("regulador")
    await register(client, sat)
    await register(client, imss)
    await register(client, regulator, categories=(), purposes=(), scopes=("ledger:audit",))
    for agency, n in ((sat, 3), (imss, 2)):
        headers = await agency_headers(client, agency)
        for i in range(n):
            await client.put(f"/api/v1/agency/records/R{i}", json=RECORD, headers=headers)
    await wait_for_size(client, 5)
    audit = await agency_headers(client, regulator)
    page = (
        await client.get(
            "/api/v1/regulator/events", params={"type": "record.published"}, headers=audit
        )
    ).json()
    assert len(page["items"]) == 5
    stats = (await client.get("/api/v1/regulator/stats", headers=audit)).json()
    assert stats["total"] == 5
    assert stats["by_type"]["record.published"] == 5
    # Only regulators audit; agencies don't, citizens don't.
    assert (
        await client.get("/api/v1/regulator/stats", headers=await agency_headers(client, sat))
    ).status_code == 403
    r = await client.get("/api/v1/regulator/export", headers=audit)
    assert r.status_code == 200
    lines = [line for line in r.text.splitlines() if line]
    assert [json.loads(line)["leaf_index"] for line in lines] == list(range(5))
    note = (await client.get("/ledger/checkpoint")).text
    key = await _key(client)
    result = verify_export(lines, note, key["public_key"])
    assert result.ok, result.message()
    bad = await client.get("/api/v1/regulator/events", params={"type": "no.such"}, headers=audit)
    assert bad.status_code == 400
