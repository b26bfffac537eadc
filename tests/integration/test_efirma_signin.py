"""e.firma sign-in through HTTP against a real app: success and every refusal, each with its
own problem type, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from eidentity.clock import SettableClock
from eidentity.devca import (
    DevCa,
    IssuedCredential,
    OcspResponderServer,
    init_ca,
    load_sat_private_key,
)
from eidentity.models import EfirmaSignIn
from tests.conftest import Outbox
from tests.integration.helpers import bearer, enrol, in_app_loop, services_of, sign_in_otp
from tests.paths import SAT_DIR
from wallet.app import create_app
from wallet.settings import Settings

PASSWORD = "Prueba2026"


@dataclass(frozen=True)
class Credentials:
    ca: DevCa
    good: IssuedCredential
    csd: IssuedCredential
    expired: IssuedCredential
    not_yet_valid: IssuedCredential
    revoked: IssuedCredential
    moral: IssuedCredential
    foreign: IssuedCredential


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    ca = init_ca(tmp_path_factory.mktemp("ca"), key_size=2048)
    other = init_ca(tmp_path_factory.mktemp("other-ca"), key_size=2048, common_name="AC AJENA")
    built = Credentials(
        ca=ca,
        good=ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ANA BAEZ IBARRA", PASSWORD),
        csd=ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ANA BAEZ IBARRA", PASSWORD, csd=True),
        expired=ca.issue(
            "PICD861230HSLCRV02", "PICD861230XY2", "DIEGO PICO", PASSWORD, expired=True
        ),
        not_yet_valid=ca.issue(
            "PICD861230HSLCRV02", "PICD861230XY2", "DIEGO PICO", PASSWORD, not_yet_valid=True
        ),
        revoked=ca.issue(
            "GECV901105HDFRHL00", "GECV901105QQ3", "CARLOS GE", PASSWORD, revoked=True
        ),
        moral=ca.issue(
            "ROCR790513HZSBSG01",
            "ROCR790513AA1",
            "ACEROS DEL NORTE SA DE CV",
            PASSWORD,
            company_rfc="ANO010101AB1",
        ),
        foreign=other.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ANA BAEZ IBARRA", PASSWORD),
    )
    ca.crl()
    return built


def _sign(cred: IssuedCredential, message: str) -> str:
    key = load_sat_private_key(cred.key_path.read_bytes(), PASSWORD)
    return base64.b64encode(
        key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def _cer(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


async def _login(
    client: AsyncTestClient[Any],
    cer: Path,
    signer: Callable[[str], str],
) -> Any:
    challenge = (await client.post("/auth/efirma/challenge")).json()
    return await client.post(
        "/auth/efirma/verify",
        json={
            "challenge_id": challenge["challenge_id"],
            "certificate": _cer(cer),
            "signature": signer(challenge["to_sign"]),
        },
    )


async def login(client: AsyncTestClient[Any], cred: IssuedCredential) -> Any:
    return await _login(client, cred.cer_path, lambda text: _sign(cred, text))


ClientFactory = Callable[..., AbstractAsyncContextManager[AsyncTestClient[Any]]]


@pytest.fixture
def make_client(settings: Settings, clock: SettableClock, creds: Credentials) -> ClientFactory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[AsyncTestClient[Any]]:
        values = {
            "efirma_trust_anchors": creds.ca.pem_path,
            "efirma_crl": creds.ca.directory / "crl.der",
            **overrides,
        }
        app = create_app(dataclasses.replace(settings, **values), clock=clock)
        async with AsyncTestClient(app=app) as test_client:
            yield test_client

    return factory


@pytest.fixture
async def efirma_client(make_client: ClientFactory) -> AsyncIterator[AsyncTestClient[Any]]:
    async with make_client() as client:
        yield client


def _problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["title"] and body["status"] == status


async def test_first_efirma_sign_in_enrols_and_reaches_high(
    efirma_client: AsyncTestClient[Any], creds: Credentials
) -> None:
    r = await login(efirma_client, creds.good)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["acr"] == "high"
    me = (await efirma_client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["curp"] == "BAAI810809HJCRCS02"
    assert me["rfc"] == "BAAI810809AB1"
    assert me["name"] == "ANA BAEZ IBARRA"
    assert me["enrolled_via"] == "efirma"
    assert me["assurance"] == {"level": "high", "methods": ["swk", "pop"]}
    # A second sign-in is the same citizen, and the evidence of both is kept.
    again = await login(efirma_client, creds.good)
    me2 = (
        await efirma_client.get("/api/v1/me", headers=bearer(again.json()["access_token"]))
    ).json()
    assert me2["id"] == me["id"]
    services = services_of(efirma_client)

    async def evidence() -> list[EfirmaSignIn]:
        async with services.sessions() as session:
            return list((await session.scalars(select(EfirmaSignIn))).all())

    rows = in_app_loop(efirma_client, evidence)
    assert len(rows) == 2
    assert rows[0].certificate_number == creds.good.certificate_number
    assert json.loads(rows[0].evidence)["crl"]["status"] == "not-listed"


async def test_efirma_signs_in_the_citizen_already_enrolled_by_phone(
    efirma_client: AsyncTestClient[Any], creds: Credentials, outbox: Outbox
) -> None:
    citizen_id = await enrol(efirma_client, "BAAI810809HJCRCS02", "+525512345678")
    r = await login(efirma_client, creds.good)
    me = (await efirma_client.get("/api/v1/me", headers=bearer(r.json()["access_token"]))).json()
    assert me["id"] == citizen_id
    # ...and the phone sign-in still works and is still "low".
    tokens = await sign_in_otp(efirma_client, outbox, "BAAI810809HJCRCS02", "+525512345678")
    assert tokens["acr"] == "low"


async def test_persona_moral_signs_in_its_representative(
    efirma_client: AsyncTestClient[Any], creds: Credentials
) -> None:
    r = await login(efirma_client, creds.moral)
    assert r.status_code == 200, r.text
    me = (await efirma_client.get("/api/v1/me", headers=bearer(r.json()["access_token"]))).json()
    assert me["curp"] == "ROCR790513HZSBSG01"
    assert me["rfc"] == "ROCR790513AA1"


@pytest.mark.parametrize(
    ("which", "status", "slug"),
    [
        ("csd", 403, "certificate-not-efirma"),
        ("foreign", 401, "certificate-unknown-issuer"),
        ("expired", 401, "certificate-expired"),
        ("not_yet_valid", 401, "certificate-not-yet-valid"),
        ("revoked", 401, "certificate-revoked-crl"),
    ],
)
async def test_refusals_by_certificate(
    efirma_client: AsyncTestClient[Any], creds: Credentials, which: str, status: int, slug: str
) -> None:
    _problem(await login(efirma_client, getattr(creds, which)), status, slug)


async def test_signature_by_another_key_or_over_another_text_is_refused(
    efirma_client: AsyncTestClient[Any], creds: Credentials
) -> None:
    r = await _login(efirma_client, creds.good.cer_path, lambda text: _sign(creds.moral, text))
    _problem(r, 401, "signature-invalid")
    r = await _login(efirma_client, creds.good.cer_path, lambda text: _sign(creds.good, text + " "))
    _problem(r, 401, "signature-invalid")


async def test_unreadable_certificate_and_signature(
    efirma_client: AsyncTestClient[Any], creds: Credentials
) -> None:
    challenge = (await efirma_client.post("/auth/efirma/challenge")).json()
    r = await efirma_client.post(
        "/auth/efirma/verify",
        json={
            "challenge_id": challenge["challenge_id"],
            "certificate": "no es base64!",
            "signature": "AA==",
        },
    )
    _problem(r, 400, "certificate-unparseable")
    challenge = (await efirma_client.post("/auth/efirma/challenge")).json()
    r = await efirma_client.post(
        "/auth/efirma/verify",
        json={
            "challenge_id": challenge["challenge_id"],
            "certificate": base64.b64encode(b"\x30\x82\x01\x00garbage").decode(),
            "signature": "AA==",
        },
    )
    _problem(r, 400, "certificate-unparseable")


async def test_challenge_unknown_used_and_expired(
    efirma_client: AsyncTestClient[Any], creds: Credentials, clock: SettableClock
) -> None:
    r = await efirma_client.post(
        "/auth/efirma/verify",
        json={
            "challenge_id": "inexistente",
            "certificate": _cer(creds.good.cer_path),
            "signature": "AA==",
        },
    )
    _problem(r, 400, "challenge-unknown")

    challenge = (await efirma_client.post("/auth/efirma/challenge")).json()
    body = {
        "challenge_id": challenge["challenge_id"],
        "certificate": _cer(creds.good.cer_path),
        "signature": _sign(creds.good, challenge["to_sign"]),
    }
    assert (await efirma_client.post("/auth/efirma/verify", json=body)).status_code == 200
    _problem(await efirma_client.post("/auth/efirma/verify", json=body), 400, "challenge-used")

    challenge = (await efirma_client.post("/auth/efirma/challenge")).json()
    clock.advance(5 * 60 + 1)
    r = await efirma_client.post(
        "/auth/efirma/verify",
        json={
            "challenge_id": challenge["challenge_id"],
            "certificate": _cer(creds.good.cer_path),
            "signature": _sign(creds.good, challenge["to_sign"]),
        },
    )
    _problem(r, 400, "challenge-expired")


async def test_a_refused_attempt_spends_the_challenge(
    efirma_client: AsyncTestClient[Any], creds: Credentials
) -> None:
    challenge = (await efirma_client.post("/auth/efirma/challenge")).json()
    bad = {
        "challenge_id": challenge["challenge_id"],
        "certificate": _cer(creds.good.cer_path),
        "signature": _sign(creds.moral, challenge["to_sign"]),
    }
    _problem(await efirma_client.post("/auth/efirma/verify", json=bad), 401, "signature-invalid")
    good = {**bad, "signature": _sign(creds.good, challenge["to_sign"])}
    _problem(await efirma_client.post("/auth/efirma/verify", json=good), 400, "challenge-used")


async def test_challenge_names_our_origin_and_a_fresh_nonce(
    efirma_client: AsyncTestClient[Any],
) -> None:
    a = (await efirma_client.post("/auth/efirma/challenge")).json()
    b = (await efirma_client.post("/auth/efirma/challenge")).json()
    assert "origen: http://127.0.0.1:8000" in a["to_sign"]
    assert a["challenge_id"] in a["to_sign"]
    nonce = next(line for line in a["to_sign"].splitlines() if line.startswith("nonce: "))
    assert len(base64.urlsafe_b64decode(nonce[7:] + "==")) >= 16
    assert nonce not in b["to_sign"]


async def test_ocsp_good_revoked_and_unreachable(
    make_client: ClientFactory, creds: Credentials
) -> None:
    late = creds.ca.issue("HEGG560427MVZRRL04", "HEGG560427AB1", "GABRIELA HE", PASSWORD)
    with OcspResponderServer(creds.ca) as responder:
        async with make_client(efirma_crl=None, efirma_ocsp_url=responder.url) as client:
            r = await login(client, creds.good)
            assert r.status_code == 200, r.text
            creds.ca.revoke(late.certificate_number)  # after the CRL: only OCSP knows
            _problem(await login(client, late), 401, "certificate-revoked-ocsp")
    # The responder is gone: fail closed by default...
    async with make_client(efirma_crl=None, efirma_ocsp_url=responder.url) as client:
        _problem(await login(client, creds.good), 503, "ocsp-unavailable")
    # ...or open, when the operator chose so.
    async with make_client(
        efirma_crl=None, efirma_ocsp_url=responder.url, efirma_ocsp_fail_open=True
    ) as client:
        assert (await login(client, creds.good)).status_code == 200


async def test_efirma_off_without_trust_anchors(make_client: ClientFactory) -> None:
    async with make_client(efirma_trust_anchors=None, efirma_crl=None) as client:
        _problem(await client.post("/auth/efirma/challenge"), 503, "efirma-unavailable")


@pytest.mark.skipif(not SAT_DIR.is_dir(), reason="SAT fixtures not present")
@pytest.mark.parametrize(
    ("name", "status", "slug"),
    [
        ("fiel_cacx7605101p8", 401, "certificate-unknown-issuer"),
        ("fiel_funk671228ph6", 401, "certificate-unknown-issuer"),
        ("fiel_kaho641101b39", 401, "certificate-unknown-issuer"),
        ("fiel_moral_aaa010101aaa", 401, "certificate-unknown-issuer"),
        ("csd_cacx7605101p8", 403, "certificate-not-efirma"),
    ],
)
async def test_real_sat_test_files_are_refused_cleanly_today(
    efirma_client: AsyncTestClient[Any], name: str, status: int, slug: str
) -> None:
    """SAT's files are expired and their CA is not ours: a clean 4xx, never a 5xx."""
    key = load_sat_private_key((SAT_DIR / f"{name}.key").read_bytes(), "12345678a")

    def signer(text: str) -> str:
        return base64.b64encode(
            key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        ).decode()

    _problem(await _login(efirma_client, SAT_DIR / f"{name}.cer", signer), status, slug)
