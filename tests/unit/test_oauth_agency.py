"""A simulated agency for the token-endpoint tests: real keys, a JWKS, assertions signed with
PyJWT (an implementation independent of the joserfc code that verifies them).

Other OAuth test modules import these helpers; the tests here check the helpers themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from eidentity.oauth import check_client_jwks
from eidentity.oauth.clients import AGENCY_SCOPES, RegisteredClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://127.0.0.1:8000"
TOKEN_URL = ISSUER + "/oauth/token"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def _rsa(index: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """RSA generation is slow; the few keys the tests need are made once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def new_private_key(alg: str, index: int | None = None) -> Any:
    if alg in {"RS256", "PS256"}:
        return _rsa(index if index is not None else 0)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in {"EdDSA", "Ed25519"}:
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def public_jwk(private_key: Any, kid: str | None) -> dict[str, Any]:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk = dict(jwk)
    if kid is not None:
        jwk["kid"] = kid
    return jwk


@dataclass
class Agency:
    """One client and its signing key; ``assertion`` builds a valid RFC 7523 assertion."""

    client_id: str
    alg: str = "RS256"
    kid: str | None = "k1"
    private_key: Any = None
    scopes: frozenset[str] = AGENCY_SCOPES
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.private_key is None:
            self.private_key = new_private_key(self.alg)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.private_key, self.kid), *self.extra_keys]}

    def registered(self, disabled: bool = False) -> RegisteredClient:
        return RegisteredClient(
            client_id=self.client_id,
            name=self.client_id.upper(),
            jwks=self.jwks(),
            scopes=self.scopes,
            disabled=disabled,
        )

    def claims(self, now: int, lifetime: int = 120, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid} if self.kid is not None else {}
        headers.update(header)
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=headers)

    def assertion(self, now: int, lifetime: int = 120, **overrides: Any) -> str:
        return self.sign(self.claims(now, lifetime, **overrides))


def token_form(assertion: str, scope: str | None = None, **extra: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope is not None:
        form["scope"] = scope
    form.update(extra)
    return form


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS whose signature part we choose (``alg: none``, forged HMACs)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


def hmac_signed(claims: dict[str, Any], secret: bytes, kid: str | None) -> str:
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_simulated_agency_publishes_a_registrable_jwks(alg: str) -> None:
    agency = Agency("sat", alg=alg)
    assert check_client_jwks(agency.jwks()) == ["k1"]
    claims = jwt.decode(
        agency.assertion(1_700_000_000),
        options={"verify_signature": False},
    )
    assert claims["iss"] == claims["sub"] == "sat"
    assert claims["aud"] == TOKEN_URL
