"""Revocation is linearizable, tested against the real server (two worker processes) with
releases racing the revoke over real connections, on SQLite and PostgreSQL.

Once revoke (or pause) has answered, no release under that consent succeeds; and every
release that did succeed was recorded as a use of the consent.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Outbox, run_async
from tests.integration.agencies import ASSERTION_TYPE, TestAgency

pytestmark = pytest.mark.e2e
CARPETA = [sys.executable, "-m", "wallet.cli"]
CURP, PHONE = "BAAI810809HJCRCS02", "+525512345678"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([*CARPETA, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def server(tmp_path: Path, database_url: str, outbox: Outbox) -> Iterator[tuple[str, TestAgency]]:
    port = _free_port()
    env = {
        **os.environ,
        "CARPETA_DATA_DIR": str(tmp_path / "var"),
        "CARPETA_DATABASE_URL": database_url,
        "CARPETA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARPETA_SMS_SINK": f"file:{outbox.path}",
    }
    imss, renapo = TestAgency("imss"), TestAgency("renapo")
    for agency, category in ((imss, "acta_nacimiento"), (renapo, "acta_nacimiento")):
        jwks = tmp_path / f"{agency.id}.jwks.json"
        jwks.write_text(json.dumps(agency.jwks()))
        _run(
            [
                "agency",
                "add",
                "--id",
                agency.id,
                "--name",
                agency.id.upper(),
                "--jwks",
                str(jwks),
                "--category",
                category,
                "--purpose",
                "alta_beneficiario",
            ],
            env,
        )
    _run(["citizen", "enroll", "--curp", CURP, "--phone", PHONE], env)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [*CARPETA, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as http:
            renapo_token = _token(http, base, renapo)
            http.put(
                "/api/v1/agency/records/ACTA-1",
                json={
                    "curp": CURP,
                    "category": "acta_nacimiento",
                    "title": "Acta",
                    "data": {"n": 1},
                },
                headers={"Authorization": f"Bearer {renapo_token}"},
            ).raise_for_status()
        yield base, imss
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _token(http: httpx.Client, base: str, agency: TestAgency) -> str:
    r = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": agency.assertion(base + "/oauth/token"),
        },
    )
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


def _citizen_token(http: httpx.Client, outbox: Outbox) -> str:
    otp_id = http.post("/auth/curp/start", json={"curp": CURP}).json()["otp_id"]
    deadline = time.monotonic() + 10
    while not outbox.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    tokens = http.post(
        "/auth/curp/verify", json={"otp_id": otp_id, "code": outbox.last_code(PHONE)}
    )
    token: str = tokens.json()["access_token"]
    return token


@pytest.mark.parametrize("action", ["revoke", "pause"])
def test_no_release_succeeds_once_revoke_has_answered(
    server: tuple[str, TestAgency], outbox: Outbox, action: str
) -> None:
    base, imss = server
    with httpx.Client(base_url=base, timeout=10) as http:
        agency = {"Authorization": f"Bearer {_token(http, base, imss)}"}
        me = {"Authorization": f"Bearer {_citizen_token(http, outbox)}"}
        consent_id = http.post(
            "/api/v1/agency/consent-requests",
            json={
                "curp": CURP,
                "categories": ["acta_nacimiento"],
                "purpose": "alta_beneficiario",
                "purpose_text": "Alta",
                "duration_days": 5,
                "frequency": {"unit": "hour", "value": 1000},
            },
            headers=agency,
        ).json()["id"]
        http.post(
            f"/api/v1/me/consent-requests/{consent_id}/approve", headers=me
        ).raise_for_status()

    outcomes: list[tuple[float, int]] = []
    revoked: list[float] = []

    async def race() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            stop = asyncio.Event()

            async def hammer() -> None:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = await client.post(
                        "/api/v1/agency/data-requests",
                        json={
                            "curp": CURP,
                            "category": "acta_nacimiento",
                            "purpose": "alta_beneficiario",
                            "consent_id": consent_id,
                        },
                        headers=agency,
                    )
                    outcomes.append((sent, r.status_code))
                    if revoked and sent > revoked[0] + 0.5:
                        stop.set()

            async def revoke_midway() -> None:
                while sum(1 for _, s in outcomes if s == 200) < 10:
                    await asyncio.sleep(0.005)
                r = await client.post(f"/api/v1/me/consents/{consent_id}/{action}", headers=me)
                assert r.status_code == 200, r.text
                revoked.append(time.monotonic())

            await asyncio.wait_for(
                asyncio.gather(*(hammer() for _ in range(6)), revoke_midway()), 90
            )

    run_async(race)
    after = [status for sent, status in outcomes if sent > revoked[0]]
    assert len(after) >= 6, "the race did not continue past the revoke"
    assert set(after) == {403}, after
    successes = sum(1 for _, status in outcomes if status == 200)
    assert successes >= 10
    with httpx.Client(base_url=base, timeout=10) as http:
        consents: list[dict[str, Any]] = http.get("/api/v1/me/consents", headers=me).json()["items"]
    [consent] = [c for c in consents if c["consent_id"] == consent_id]
    assert consent["use_count"] == successes
    assert consent["status"] == ("revoked" if action == "revoke" else "paused")
