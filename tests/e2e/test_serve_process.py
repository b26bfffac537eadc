"""The real `carpeta serve` process on a free port: enrol with the CLI, sign in over HTTP,
and prove from its own stderr that no CURP, phone, OTP or token was logged."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Outbox

pytestmark = pytest.mark.e2e

CURP = "GECV901105HDFRHL00"
PHONE = "+523312345678"
CARPETA = [sys.executable, "-m", "wallet.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, outbox: Outbox
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "CARPETA_DATA_DIR": str(tmp_path / "var"),
        "CARPETA_DATABASE_URL": database_url,
        "CARPETA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARPETA_SMS_SINK": f"file:{outbox.path}",
        "CARPETA_LOG_LEVEL": "DEBUG",
    }
    enrolled = subprocess.run(
        [*CARPETA, "citizen", "enroll", "--curp", CURP, "--phone", PHONE, "--name", "Carlos"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*CARPETA, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("server did not start: " + log_path.read_text())
        yield base, log_path, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_sign_in_over_http_against_the_real_server_and_logs_stay_clean(
    server: tuple[str, Path, dict[str, str]], outbox: Outbox
) -> None:
    base, log_path, _ = server
    with httpx.Client(base_url=base, timeout=10) as http:
        started = http.post("/auth/curp/start", json={"curp": CURP})
        assert started.status_code == 200
        deadline = time.monotonic() + 10
        while not outbox.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        code = outbox.last_code(PHONE)
        wrong = http.post(
            "/auth/curp/verify",
            json={"otp_id": started.json()["otp_id"], "code": f"{(int(code) + 1) % 10**6:06d}"},
        )
        assert wrong.status_code == 401
        tokens = http.post(
            "/auth/curp/verify", json={"otp_id": started.json()["otp_id"], "code": code}
        ).json()
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["curp"] == CURP
        refreshed = http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        # Bad input is answered with problems, not stack traces.
        bad = http.post(
            "/auth/curp/start", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert "Traceback" not in bad.text
        http.get(f"/api/v1/me?curp={CURP}&token={tokens['access_token']}")
        secrets = [
            CURP,
            CURP.lower(),
            PHONE,
            PHONE[3:],
            code,
            tokens["access_token"],
            tokens["access_token"].split(".")[1],
            tokens["refresh_token"],
            refreshed.json()["access_token"],
            refreshed.json()["refresh_token"],
            started.json()["otp_id"],
        ]
    time.sleep(0.3)
    logs = log_path.read_text()
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "carpeta.access"]
    # The access log is on (otherwise this test would prove nothing) and structured.
    assert len(access) >= 6
    assert {"/auth/curp/start", "/auth/curp/verify", "/api/v1/me"} <= {r["route"] for r in access}
    assert all(isinstance(r["status"], int) for r in access)
    for secret in secrets:
        assert secret not in logs, f"leaked into logs: {secret[:6]}…"
    assert not re.search(r"(?<!\d)" + re.escape(code) + r"(?!\d)", logs)
