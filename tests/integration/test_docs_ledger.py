"""The outsider's verifier printed in docs/ledger.md works on a real log, as printed."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Outbox
from tests.integration.agencies import TestAgency, agency_headers, register
from tests.integration.helpers import bearer, enrol, sign_in_otp
from tests.integration.test_ledger_http import wait_for_size

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def _snippet() -> dict[str, Any]:
    code = re.search(r"## Verifying as an outsider.*?```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    return namespace


async def test_documented_verifier_checks_checkpoint_activity_and_export(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    doc = _snippet()
    curp, phone = "BAAI810809HJCRCS02", "+525512345678"
    await enrol(client, curp, phone)
    me = bearer((await sign_in_otp(client, outbox, curp, phone))["access_token"])
    sat, regulator = TestAgency("sat"), TestAgency("regulador")
    await register(client, sat)
    await register(client, regulator, categories=(), purposes=(), scopes=("ledger:audit",))
    headers = await agency_headers(client, sat)
    for n in range(7):
        await client.put(
            f"/api/v1/agency/records/D{n}",
            json={"curp": curp, "category": "acta_nacimiento", "title": "Acta", "data": {"n": n}},
            headers=headers,
        )
    note = await wait_for_size(client, 7)
    key = (await client.get("/.well-known/carpeta-ledger")).json()
    _, size, root = doc["verify_checkpoint"](
        note, key["key_name"], base64.b64decode(key["public_key"])
    )
    activity = (await client.get("/api/v1/me/activity", headers=me)).json()
    assert activity["checkpoint"] == note and activity["items"]
    for item in activity["items"]:
        computed = doc["root_from_inclusion"](
            item["leaf_index"],
            item["tree_size"],
            doc["leaf_hash"](base64.b64decode(item["leaf"])),
            [base64.b64decode(x) for x in item["inclusion"]],
        )
        assert computed == root
    export = await client.get(
        "/api/v1/regulator/export", headers=await agency_headers(client, regulator)
    )
    lines = [line for line in export.text.splitlines() if line]
    assert len(lines) == size
    assert doc["root_of_export"](lines) == root
    # ...and it notices a tampered export.
    tampered = list(lines)
    item = json.loads(tampered[3])
    leaf = base64.b64decode(item["leaf"]).replace(
        b'"outcome":"published"', b'"outcome":"withdrawn"'
    )
    tampered[3] = json.dumps({**item, "leaf": base64.b64encode(leaf).decode()})
    assert doc["root_of_export"](tampered) != root
