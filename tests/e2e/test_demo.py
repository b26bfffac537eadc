"""`carpeta demo` as a newcomer runs it: from an empty directory to a living folder, signing
in with the SMS code from the outbox and with the printed e.firma files."""

from __future__ import annotations

import base64
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_private_key

pytestmark = pytest.mark.e2e
CARPETA = [sys.executable, "-m", "wallet.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    workdir = tmp_path_factory.mktemp("newcomer")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPETA_")}
    log = (workdir / "demo.log").open("wb")
    process = subprocess.Popen(
        [*CARPETA, "demo", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (workdir / "demo.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError("demo did not start")
        yield base, workdir, (workdir / "demo.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_guide_names_everything_a_newcomer_needs(demo: tuple[str, Path, str]) -> None:
    _, workdir, guide = demo
    assert "LOHG850312MDFPRD09" in guide
    assert "sms.jsonl" in guide
    assert "Demo2026" in guide
    assert "abre http://127.0.0.1:" in guide
    assert re.search(r"\S+\.cer\s+\S+\.key", guide)
    assert (workdir / "var" / "carpeta.db").exists()


def test_sign_in_by_sms_code_and_see_the_seeded_folder(demo: tuple[str, Path, str]) -> None:
    base, workdir, _ = demo
    curp = "LOHG850312MDFPRD09"
    with httpx.Client(base_url=base, timeout=10) as http:
        started = http.post("/auth/curp/start", json={"curp": curp}).json()
        outbox = workdir / "var" / "sms.jsonl"
        deadline = time.monotonic() + 10
        code = None
        while code is None and time.monotonic() < deadline:
            if outbox.exists():
                lines = [json.loads(x) for x in outbox.read_text().splitlines() if x.strip()]
                if lines:
                    code = re.findall(r"(?<!\d)\d{6}(?!\d)", lines[-1]["text"])[0]
            time.sleep(0.1)
        assert code is not None
        tokens = http.post(
            "/auth/curp/verify", json={"otp_id": started["otp_id"], "code": code}
        ).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        summary = http.get("/api/v1/me/summary", headers=auth).json()
        assert summary["open_procedures"] == 2 and summary["action_required"] == 1
        assert summary["records"] == 4
        procedures = http.get("/api/v1/me/procedures", headers=auth).json()["items"]
        assert any(p["agency"] == "sat" and p["status"] == "action_required" for p in procedures)


def test_sign_in_with_the_printed_efirma_files(demo: tuple[str, Path, str]) -> None:
    base, _, guide = demo
    cer_path, key_path = re.search(r"LOHG850312MDFPRD09: (\S+\.cer)\s+(\S+\.key)", guide).groups()  # type: ignore[union-attr]
    key = load_der_private_key(Path(key_path).read_bytes(), b"Demo2026")
    with httpx.Client(base_url=base, timeout=10) as http:
        challenge = http.post("/auth/efirma/challenge").json()
        signature = key.sign(challenge["to_sign"].encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
        r = http.post(
            "/auth/efirma/verify",
            json={
                "challenge_id": challenge["challenge_id"],
                "certificate": base64.b64encode(Path(cer_path).read_bytes()).decode(),
                "signature": base64.b64encode(signature).decode(),
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["acr"] == "high"


def test_agency_token_command_and_publishing(demo: tuple[str, Path, str]) -> None:
    base, workdir, _ = demo
    key = workdir / "var" / "demo" / "agencies" / "sat.jwk.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPETA_")}
    out = subprocess.run(
        [*CARPETA, "agency", "token", "--id", "sat", "--key", str(key), "--url", base],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=workdir,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    r = httpx.put(
        f"{base}/api/v1/agency/records/CSF-NEW",
        json={
            "curp": "RATL781102HJCMRS08",
            "category": "constancia_situacion_fiscal",
            "title": "Constancia de situación fiscal",
            "data": {"rfc": "RATL781102AB3", "situacion": "Activo"},
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
