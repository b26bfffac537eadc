"""Signing in from the phone: CURP and SMS code with the keyboard only, e.firma opened and
signed in the browser (dev CA files, and SAT's real test files), sessions kept alive by
refresh-token rotation."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from playwright.sync_api import Request, Route

from pwa.assets import AssetTable
from tests.e2e.pwa_support import (
    DEMO_PASSWORD,
    GUADALUPE,
    Phone,
    PwaServer,
    assets,
    b64,
    browser,
    phone,
    pwa_server,
)
from tests.paths import SAT_DIR

pytestmark = pytest.mark.e2e
__all__ = ["assets", "browser", "phone", "pwa_server"]  # fixtures used below

SAT_PASSWORD = "12345678a"


def _session(phone: Phone) -> dict[str, Any]:
    value: dict[str, Any] = phone.page.evaluate(
        "() => JSON.parse(localStorage.getItem('cc.session'))"
    )
    return value


def test_keyboard_only_sign_in_by_sms_code(phone: Phone, pwa_server: PwaServer) -> None:
    page = phone.open("/")
    page.wait_for_selector("#curp")
    assert page.evaluate("() => document.activeElement.tagName") == "H1"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "curp"

    # A CURP that is too short is caught on the phone, in words, without a request.
    page.keyboard.type("LOHG850312")
    page.keyboard.press("Enter")
    assert (
        page.text_content("#curp-err")
        == "La CURP tiene 18 letras y números. Revisa que esté completa."
    )
    assert page.get_attribute("#curp", "aria-invalid") == "true"

    page.fill("#curp", "")
    page.keyboard.type(GUADALUPE[0].lower())  # typed in lower case: the app fixes it
    before = len(pwa_server.outbox.messages())
    page.keyboard.press("Enter")
    page.wait_for_selector("#code")
    assert page.evaluate("() => document.activeElement.id") == "code"
    assert page.is_visible("text=Te mandamos un código de 6 números por SMS")
    code = pwa_server.wait_code(GUADALUPE[1], before)

    wrong = "000000" if code != "000000" else "111111"
    phone.allow(r"status of 401 .*/auth/curp/verify")
    page.keyboard.type(wrong)
    page.keyboard.press("Enter")
    page.wait_for_selector("#code-err:not([hidden])")
    assert page.evaluate("() => document.activeElement.id") == "code"

    page.keyboard.type(code)  # the wrong code is selected, typing replaces it
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Hola, Guadalupe')")
    assert page.evaluate("() => document.activeElement.tagName") == "H1"
    assert _session(phone)["acr"] == "low"
    page.wait_for_selector("text=Declaración anual 2025")


def test_server_explains_a_wrong_curp(phone: Phone) -> None:
    phone.allow(r"status of 422 .*/auth/curp/start")
    page = phone.open("/")
    page.wait_for_selector("#curp")
    page.fill("#curp", "LOHG850312MDFPRD08")  # wrong check digit
    page.press("#curp", "Enter")
    page.wait_for_selector("#curp-err:not([hidden])")
    message = page.text_content("#curp-err") or ""
    assert "CURP" in message and len(message) > 20


def _efirma(page: Any, cer: Path, key: Path, password: str) -> None:
    page.click("text=Entrar con e.firma")
    page.wait_for_selector("#cer")
    page.set_input_files("#cer", str(cer))
    page.set_input_files("#key", str(key))
    page.fill("#pass", password)
    page.press("#pass", "Enter")


def test_efirma_sign_in_with_dev_ca_files(phone: Phone, pwa_server: PwaServer) -> None:
    cer, key = pwa_server.efirma_files(GUADALUPE[2])
    page = phone.open("/")
    page.wait_for_selector("#curp")
    loaded_before = [str(r["url"]) for r in phone.transfer.rows()]
    assert not any("efirma" in url for url in loaded_before)

    posted: list[Request] = []
    page.on("request", lambda r: posted.append(r) if r.method == "POST" else None)
    pwa_server.proxy.reset()
    _efirma(page, cer, key, DEMO_PASSWORD)
    page.wait_for_selector("h1:has-text('Hola, Guadalupe')")
    assert _session(phone)["acr"] == "high"
    assert any("efirma" in str(r["url"]) for r in phone.transfer.rows())  # loaded on demand

    # Only the certificate and the signature went out; never the key nor its password.
    verify = next(r for r in posted if r.url.endswith("/auth/efirma/verify"))
    body = verify.post_data_json
    assert body is not None
    assert set(body) == {"challenge_id", "certificate", "signature"}
    assert base64.b64decode(body["certificate"]) == cer.read_bytes()
    assert all(r.headers.get("idempotency-key") for r in posted)
    wire = bytes(pwa_server.proxy.sent)
    secret = key.read_bytes()
    assert DEMO_PASSWORD.encode() not in wire
    assert secret[-64:] not in wire and b64(secret)[:64].encode() not in wire
    assert secret[:64] not in wire


def test_efirma_wrong_password_is_told_plainly(phone: Phone, pwa_server: PwaServer) -> None:
    cer, key = pwa_server.efirma_files(GUADALUPE[2])
    page = phone.open("/")
    page.wait_for_selector("#curp")
    _efirma(page, cer, key, "no-es-la-contraseña")
    page.wait_for_selector("#pass-err:not([hidden])")
    assert (
        page.text_content("#pass-err")
        == "La contraseña no abre esta llave. Revísala e intenta de nuevo."
    )
    assert page.evaluate("() => document.activeElement.id") == "pass"
    assert not any("/auth/efirma/" in str(r["url"]) for r in phone.transfer.rows())


def test_efirma_key_of_another_certificate_is_caught(phone: Phone, pwa_server: PwaServer) -> None:
    cer, _ = pwa_server.efirma_files(GUADALUPE[2])
    _, other_key = pwa_server.efirma_files("RATL781102AB3")
    page = phone.open("/")
    page.wait_for_selector("#curp")
    _efirma(page, cer, other_key, DEMO_PASSWORD)
    page.wait_for_selector("#key-err:not([hidden])")
    assert (
        page.text_content("#key-err") == "La llave (.key) no corresponde a este certificado (.cer)."
    )


@pytest.mark.parametrize(
    "name",
    ["fiel_cacx7605101p8", "fiel_funk671228ph6", "fiel_kaho641101b39", "fiel_moral_aaa010101aaa"],
)
def test_sat_test_files_are_opened_and_sign_correctly_in_the_browser(
    phone: Phone, name: str
) -> None:
    """SAT's real files (PBES2, PBKDF2-SHA1, 3DES): the server refuses them (expired, unknown
    CA), but the signature the browser made must verify with the certificate's key."""
    cer, key = SAT_DIR / f"{name}.cer", SAT_DIR / f"{name}.key"
    page = phone.open("/")
    page.wait_for_selector("#curp")
    seen: dict[str, Any] = {}

    def capture(route: Route) -> None:
        seen["verify"] = route.request.post_data_json
        route.continue_()

    page.route("**/auth/efirma/verify", capture)
    phone.allow(r"status of 4\d\d .*/auth/efirma/verify")
    with page.expect_response("**/auth/efirma/challenge") as challenge_info:
        _efirma(page, cer, key, SAT_PASSWORD)
    challenge = challenge_info.value.json()
    page.wait_for_selector("#cer-err:not([hidden])")  # the server's refusal, in its words
    assert page.text_content("#cer-err")

    body = seen["verify"]
    assert body["challenge_id"] == challenge["challenge_id"]
    assert base64.b64decode(body["certificate"]) == cer.read_bytes()
    public_key = x509.load_der_x509_certificate(cer.read_bytes()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(body["signature"]),
        challenge["to_sign"].encode("utf-8"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_session_is_kept_by_refresh_rotation(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    phone.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
    page = phone.page
    page.wait_for_selector("text=Acta de nacimiento")
    first = _session(phone)

    # The access token ran out: the next call rotates the refresh token first.
    refreshes: list[Request] = []
    page.on("request", lambda r: refreshes.append(r) if r.url.endswith("/auth/refresh") else None)
    page.evaluate(
        "() => { const s = JSON.parse(localStorage.getItem('cc.session'));"
        " s.exp = Date.now() - 1000; localStorage.setItem('cc.session', JSON.stringify(s)); }"
    )
    with page.expect_response("**/api/v1/me"):
        page.goto(phone.url("/#/mis-datos"))
    page.wait_for_selector("text=LOHG850312MDFPRD09")
    second = _session(phone)
    assert len(refreshes) == 1 and refreshes[0].headers.get("idempotency-key")
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]

    # A token the server no longer accepts (401 invalid_token): refresh once, then retry.
    page.evaluate(
        "() => { const s = JSON.parse(localStorage.getItem('cc.session'));"
        " s.access = 'not-a-token'; localStorage.setItem('cc.session', JSON.stringify(s)); }"
    )
    phone.allow(r"status of 401 .*/api/v1/me")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/me") and r.status == 200):
        page.reload()
    third = _session(phone)
    assert third["refresh"] not in (first["refresh"], second["refresh"])

    # Replaying a rotated refresh token revokes the whole sign-in (server rule); the app then
    # lands on the sign-in screen instead of failing.
    replay = httpx.post(
        pwa_server.direct + "/auth/refresh", json={"refresh_token": first["refresh"]}
    )
    assert replay.status_code == 401
    page.evaluate(
        "() => { const s = JSON.parse(localStorage.getItem('cc.session'));"
        " s.exp = Date.now() - 1000; localStorage.setItem('cc.session', JSON.stringify(s)); }"
    )
    phone.allow(r"status of 401")
    page.reload()
    page.wait_for_selector("#curp")
    assert (
        json.loads(page.evaluate("() => JSON.stringify(localStorage.getItem('cc.session'))"))
        is None
    )
