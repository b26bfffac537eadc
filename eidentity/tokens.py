"""Access tokens: short-lived EdDSA JWTs that any party can verify from our JWKS.

Verification is deliberately narrow: one algorithm (EdDSA), the key chosen only by ``kid``
from our own key ring, and ``iss``, ``aud``, ``exp``, ``iat``, ``sub``, ``jti`` required. That
rules out ``alg: none`` and HS/RS confusion by construction: no symmetric key exists to confuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eidentity.assurance import AssuranceLevel
from eidentity.errors import IdentityError

ALGORITHM = "EdDSA"
LEEWAY = 5
MAX_LIFETIME = 600
VERIFIED_CACHE_SIZE = 50_000


class TokenInvalid(IdentityError):
    slug = "token-invalid"
    title = "La sesión no es válida o ya expiró. Vuelve a iniciar sesión."
    status = 401


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: a ``kid`` that anyone can recompute from the key itself."""
    required = {k: jwk[k] for k in ("crv", "kty", "x")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: int

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey, created_at: int) -> SigningKey:
        kid = jwk_thumbprint(public_jwk(private_key.public_key()))
        return cls(kid=kid, private_key=private_key, created_at=created_at)


@dataclass(slots=True)
class KeyRing:
    """The newest key signs; every key in the ring verifies (rotation without logouts)."""

    keys: list[SigningKey]
    _by_kid: dict[str, SigningKey] = field(init=False)
    _headers: dict[tuple[str, str], str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = sorted(self.keys, key=lambda k: k.created_at)
        self._by_kid = {k.kid: k for k in self.keys}
        self._headers = {}

    @property
    def active(self) -> SigningKey:
        return self.keys[-1]

    def find(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        out = []
        for key in reversed(self.keys):
            jwk = public_jwk(key.private_key.public_key())
            out.append({**jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": out}

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Compact JWS (EdDSA, RFC 8037) of ``claims`` (JSON values only) with the active key.

        Written out rather than through PyJWT's generic encoder, which costs about as much as
        the Ed25519 signature itself — and a data release signs one per request."""
        key = self.active
        header = self._headers.get((key.kid, typ))
        if header is None:
            fields = {"alg": ALGORITHM, "kid": key.kid, "typ": typ}
            header = _b64url(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
            self._headers[(key.kid, typ)] = header
        payload = _b64url(msgspec.json.encode(claims))
        signing_input = f"{header}.{payload}"
        signature = key.private_key.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token tells us about its bearer."""

    subject: str
    acr: AssuranceLevel
    amr: tuple[str, ...]
    jti: str
    expires_at: int
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def is_citizen(self) -> bool:
        return self.client_id is None


class AccessTokens:
    """Issues and verifies access tokens for one issuer and audience."""

    def __init__(
        self,
        ring: KeyRing,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < ttl_seconds <= 600:
            raise ValueError("access tokens live at most 10 minutes")
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds
        self._now = now
        self._verified: dict[str, AccessClaims] = {}

    def issue_for_citizen(
        self, citizen_id: str, acr: AssuranceLevel, amr: Sequence[str], now: int
    ) -> str:
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": citizen_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            "acr": acr.value,
            "amr": list(amr),
        }
        return self.ring.sign(claims, typ="at+jwt")

    def issue_for_client(self, client_id: str, scopes: Sequence[str], now: int) -> str:
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
        }
        return self.ring.sign(claims, typ="at+jwt")

    def verify(self, token: str) -> AccessClaims:
        """Check signature, ``iss``, ``aud`` and times (against our clock, with 5 s leeway).

        A token already verified is remembered until it expires: a phone sends the same token
        on every request for up to ten minutes, and its signature cannot change meanwhile.
        Expiry is still checked on every call.
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at <= self._now() - LEEWAY:
                self._verified.pop(token, None)
                raise TokenInvalid("El token ya expiró.")
            return cached
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # bounded; refilled by the tokens in use
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("El token no tiene el formato de un JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid("El algoritmo del token no está permitido.")
        kid = header.get("kid")
        key = self.ring.find(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenInvalid("El token fue firmado con una llave desconocida.")
        options: jwt.types.Options = {
            "require": ["exp", "iat", "sub", "jti", "iss", "aud"],
            # Times are checked below against the service clock, not PyJWT's.
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        }
        try:
            claims = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options=options,
            )
        except jwt.PyJWTError:
            raise TokenInvalid("El token no es válido.") from None
        now = self._now()
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
            nbf = float(claims.get("nbf", iat))
        except (TypeError, ValueError):
            raise TokenInvalid("El token no es válido.") from None
        if exp <= now - LEEWAY:
            raise TokenInvalid("El token ya expiró.")
        if iat > now + LEEWAY or nbf > now + LEEWAY:
            raise TokenInvalid("El token todavía no es válido.")
        if exp - iat > MAX_LIFETIME:
            raise TokenInvalid("El token dura más de lo permitido.")
        return _claims_from(claims)


def _claims_from(claims: dict[str, Any]) -> AccessClaims:
    client_id = claims.get("client_id")
    if isinstance(client_id, str):
        scope = claims.get("scope", "")
        return AccessClaims(
            subject=str(claims["sub"]),
            acr=AssuranceLevel.LOW,
            amr=(),
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            client_id=client_id,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        )
    try:
        acr = AssuranceLevel(claims.get("acr"))
    except ValueError:
        raise TokenInvalid("El token no indica un nivel de seguridad válido.") from None
    amr = claims.get("amr", [])
    return AccessClaims(
        subject=str(claims["sub"]),
        acr=acr,
        amr=tuple(str(m) for m in amr) if isinstance(amr, list) else (),
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
    )
