"""Schemathesis over our own OpenAPI, against the real server with real credentials:
whatever it sends — valid or malformed — the answer is never a 5xx, and every error is an
RFC 9457 problem. (SPEC "Reliability and security".)"""

from __future__ import annotations

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
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import Outbox
from tests.integration.agencies import ASSERTION_TYPE, TestAgency
from wallet.app import create_app
from wallet.settings import Settings

pytestmark = pytest.mark.e2e
CARPETA = [sys.executable, "-m", "wallet.cli"]
CURP, PHONE = "BAAI810809HJCRCS02", "+525512345678"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _schema_dict() -> dict[str, Any]:
    """The OpenAPI document exactly as the app serves it (no database needed to build it)."""
    app = create_app(Settings(data_dir=Path("/nonexistent"), log_format="text"))
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server on SQLite with a citizen, an agency and a regulator able to call it."""
    tmp = tmp_path_factory.mktemp("fuzz")
    outbox = Outbox(tmp / "sms.jsonl")
    port = _free_port()
    env = {
        **os.environ,
        "CARPETA_DATA_DIR": str(tmp / "var"),
        "CARPETA_DATABASE_URL": "",
        "CARPETA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARPETA_SMS_SINK": f"file:{outbox.path}",
        "CARPETA_LOG_FORMAT": "json",
        "CARPETA_EFIRMA_TRUST_ANCHORS": str(tmp / "ca" / "ca.pem"),
    }
    subprocess.run(
        [*CARPETA, "dev-ca", "init", str(tmp / "ca"), "--key-size", "2048"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    agency, regulator = TestAgency("sat"), TestAgency("regulador")
    for who, extra in (
        (agency, ["--category", "acta_nacimiento", "--purpose", "tramite"]),
        (regulator, ["--scope", "ledger:audit"]),
    ):
        jwks = tmp / f"{who.id}.json"
        jwks.write_text(json.dumps(who.jwks()))
        done = subprocess.run(
            [
                *CARPETA,
                "agency",
                "add",
                "--id",
                who.id,
                "--name",
                who.id,
                "--jwks",
                str(jwks),
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    subprocess.run(
        [*CARPETA, "citizen", "enroll", "--curp", CURP, "--phone", PHONE],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen(
        [*CARPETA, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)

        def token(who: TestAgency) -> str:
            r = httpx.post(
                base + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": who.assertion(base + "/oauth/token"),
                },
            )
            value: str = r.json()["access_token"]
            return value

        otp_id = httpx.post(base + "/auth/curp/start", json={"curp": CURP}).json()["otp_id"]
        time.sleep(0.3)
        citizen = httpx.post(
            base + "/auth/curp/verify", json={"otp_id": otp_id, "code": outbox.last_code(PHONE)}
        ).json()
        yield {
            "base": base,
            "citizen": citizen["access_token"],
            "agency": token(agency),
            "regulator": token(regulator),
            "log": tmp / "server.log",
        }
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


schema = schemathesis.openapi.from_dict(_schema_dict())


def _credential(live: dict[str, Any], path: str) -> str | None:
    if path.startswith("/api/v1/me"):
        return str(live["citizen"])
    if path.startswith("/api/v1/agency"):
        return str(live["agency"])
    if path.startswith("/api/v1/regulator"):
        return str(live["regulator"])
    return None


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CARPETA_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_ever_gives_a_server_error(case: Any, live: dict[str, Any]) -> None:
    token = _credential(live, case.path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if case.path == "/api/v1/regulator/export":
        headers["Accept"] = "application/jsonl"
    response = case.call(base_url=live["base"], headers=headers, timeout=20)
    assert response.status_code < 500, (
        case.method,
        case.path,
        response.status_code,
        response.text[:500],
    )
    if response.status_code >= 400:
        content_type = response.headers.get("content-type") or [""]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), (case.path, response.text[:300])
        body = response.json()
        assert body["type"].startswith("https://carpeta.gob.mx/problems/") and body["title"]
