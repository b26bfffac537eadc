"""Access and refresh tokens attacked from the outside: forged, confused, stale, replayed."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from eidentity.assurance import AssuranceLevel
from eidentity.clock import SettableClock
from eidentity.guards import STATE_KEY, requires_citizen
from tests.conftest import Outbox
from tests.integration.helpers import bearer, enrol, services_of, sign_in_otp
from wallet.problems import exception_handlers

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _tokens(client: AsyncTestClient[Any], outbox: Outbox) -> dict[str, Any]:
    await enrol(client, CURP, PHONE)
    return await sign_in_otp(client, outbox, CURP, PHONE)


async def _me(client: AsyncTestClient[Any], token: str) -> Any:
    return await client.get("/api/v1/me", headers=bearer(token))


async def test_access_token_is_eddsa_with_kid_listed_in_jwks(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    tokens = await _tokens(client, outbox)
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert "d" not in key  # public only
    public = jwt.PyJWK(key).key
    claims = jwt.decode(
        tokens["access_token"],
        public,
        algorithms=["EdDSA"],
        audience="http://127.0.0.1:8000",
        issuer="http://127.0.0.1:8000",
    )
    assert claims["acr"] == "low" and claims["amr"] == ["otp", "sms"]
    assert claims["exp"] - claims["iat"] <= 600
    assert {"sub", "jti"} <= set(claims)


async def test_no_token_and_garbage_token_are_401_problems(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["type"].endswith("/unauthenticated")
    r = await _me(client, "not.a.jwt")
    assert r.status_code == 401 and r.json()["type"].endswith("/token-invalid")


async def test_alg_none_is_refused(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    tokens = await _tokens(client, outbox)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    header = {
        "alg": "none",
        "typ": "JWT",
        "kid": jwt.get_unverified_header(tokens["access_token"])["kid"],
    }
    forged = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
    r = await _me(client, forged)
    assert r.status_code == 401 and r.json()["type"].endswith("/token-invalid")


async def test_hs256_signed_with_the_public_key_is_refused(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    tokens = await _tokens(client, outbox)
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["acr"] = "high"
    ring = services_of(client).access_tokens.ring
    public_pem = ring.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_x = next(k["x"] for k in ring.jwks()["keys"] if k["kid"] == kid)
    for secret in (public_pem, jwk_x.encode()):
        forged = _hmac_jwt(claims, secret, kid)
        r = await _me(client, forged)
        assert r.status_code == 401 and r.json()["type"].endswith("/token-invalid")


def _hmac_jwt(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("aud", "https://otro-servicio.example"), ("iss", "https://impostor.example")],
)
async def test_wrong_audience_or_issuer_is_refused(
    client: AsyncTestClient[Any], outbox: Outbox, claim: str, value: str
) -> None:
    tokens = await _tokens(client, outbox)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims[claim] = value
    ring = services_of(client).access_tokens.ring
    r = await _me(client, ring.sign(claims))  # our own key, wrong claim
    assert r.status_code == 401 and r.json()["type"].endswith("/token-invalid")


async def test_token_expires_after_its_lifetime(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    tokens = await _tokens(client, outbox)
    clock.advance(tokens["expires_in"] - 10)
    assert (await _me(client, tokens["access_token"])).status_code == 200
    clock.advance(20)
    r = await _me(client, tokens["access_token"])
    assert r.status_code == 401
    assert "expir" in r.json()["detail"]


async def test_backdated_or_overlong_tokens_are_refused(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    tokens = await _tokens(client, outbox)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    ring = services_of(client).access_tokens.ring
    stale = {**claims, "exp": int(time.time()) - 60, "iat": int(time.time()) - 660}
    future = {**claims, "iat": int(time.time()) + 3600, "exp": int(time.time()) + 3900}
    overlong = {**claims, "exp": claims["iat"] + 86400}
    for forged in (stale, future, overlong):
        r = await _me(client, ring.sign(forged))
        assert r.status_code == 401, forged


async def test_token_signed_by_a_foreign_ed25519_key_is_refused(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    tokens = await _tokens(client, outbox)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    r = await _me(client, forged)
    assert r.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    tokens = await _tokens(client, outbox)
    first = tokens["refresh_token"]
    r = await client.post("/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    assert (await _me(client, r.json()["access_token"])).status_code == 200
    # The old token comes back: someone else holds it.
    r = await client.post("/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401 and r.json()["type"].endswith("/refresh-invalid")
    # ...so the legitimate, newer token is dead too.
    r = await client.post("/auth/refresh", json={"refresh_token": second})
    assert r.status_code == 401


async def test_refresh_keeps_the_assurance_of_the_sign_in(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    tokens = await _tokens(client, outbox)
    r = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.json()["acr"] == "low"


async def test_refresh_token_expires(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    tokens = await _tokens(client, outbox)
    clock.advance(30 * 86400 + 1)
    r = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


async def test_logout_ends_the_session(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    tokens = await _tokens(client, outbox)
    r = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    r = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    # Logging out twice, or with an unknown token, is harmless and reveals nothing.
    r = await client.post("/auth/logout", json={"refresh_token": "desconocido"})
    assert r.status_code == 204


async def test_step_up_guard_names_the_level_needed(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    """The reusable guard, mounted on a route of its own with the real token verifier."""
    tokens = await _tokens(client, outbox)

    @get("/high", guards=[requires_citizen(AssuranceLevel.HIGH)])
    async def high_only() -> dict[str, str]:
        return {"ok": "yes"}

    @get("/low", guards=[requires_citizen(AssuranceLevel.LOW)])
    async def low_ok() -> dict[str, str]:
        return {"ok": "yes"}

    app = Litestar([high_only, low_ok], exception_handlers=exception_handlers)
    app.state[STATE_KEY] = services_of(client).access_tokens
    async with AsyncTestClient(app) as other:
        r = await other.get("/high", headers=bearer(tokens["access_token"]))
        assert r.status_code == 401
        assert 'acr_values="high"' in r.headers["www-authenticate"]
        assert "insufficient_user_authentication" in r.headers["www-authenticate"]
        assert r.json()["type"].endswith("/step-up-required")
        assert r.json()["required_acr"] == "high"
        r = await other.get("/low", headers=bearer(tokens["access_token"]))
        assert r.status_code == 200
