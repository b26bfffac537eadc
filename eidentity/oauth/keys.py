"""Client public keys: which JWKs may verify which assertion, and the verification itself.

Only asymmetric signatures from an allow-list are accepted, so ``none`` and HS/RS confusion
(an HMAC keyed with a public key) cannot happen: there is no symmetric key to confuse. A key is
named by its ``kid`` or, lacking one, by its RFC 7638 thumbprint, so a client may always pick a
key by ``kid``; without a ``kid`` every key that fits the algorithm is tried.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey, import_key
from joserfc.jws import JWSRegistry

#: Signature algorithms accepted on client assertions. ``Ed25519`` is the RFC 9864 name of what
#: ``EdDSA`` means with an Ed25519 key; newer JOSE libraries emit it.
ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")
MIN_RSA_BITS = 2048

_KEY_FITS: dict[str, tuple[type[Key], frozenset[str]]] = {
    "RS256": (RSAKey, frozenset()),
    "PS256": (RSAKey, frozenset()),
    "ES256": (ECKey, frozenset({"P-256"})),
    "EdDSA": (OKPKey, frozenset({"Ed25519", "Ed448"})),
    "Ed25519": (OKPKey, frozenset({"Ed25519"})),
}


class _QuietEdDSA(EdDSAAlgorithm):
    """RFC 9864 deprecates the name ``EdDSA``; SPEC still names it, so accept it without a
    warning on every request."""

    security_warning = None  # type: ignore[assignment]


class _AssertionRegistry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _QuietEdDSA()}


class UnusableJwks(ValueError):
    """A JWK Set that cannot be registered for a client (message in es-MX, for the CLI)."""


@dataclass(frozen=True, slots=True)
class ClientKey:
    kid: str
    key: Key


def _curve(key: Key) -> str:
    return key.curve_name if isinstance(key, ECKey | OKPKey) else ""


def _rsa_bits(modulus: object) -> int | None:
    """Size of a JWK ``n``; ``None`` when it is not base64url (the import will refuse it)."""
    if not isinstance(modulus, str):
        return None
    padded = modulus + "=" * (-len(modulus) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except ValueError:
        return None
    return int.from_bytes(raw, "big").bit_length() or None


def _why_not_imported(entry: dict[str, Any]) -> str | None:
    """Refusals decided on the JSON alone: a secret or a weak key is never even imported."""
    kty = entry.get("kty")
    if kty == "oct":
        return "es una llave simétrica (oct); solo se aceptan llaves públicas"
    if kty not in {"RSA", "EC", "OKP"}:
        return "su «kty» no es RSA, EC ni OKP"
    bits = _rsa_bits(entry.get("n")) if kty == "RSA" else None
    if bits is not None and bits < MIN_RSA_BITS:
        return f"la llave RSA tiene {bits} bits; el mínimo es {MIN_RSA_BITS}"
    return None


def _why_unusable(key: Key) -> str | None:
    if isinstance(key, OctKey):
        return "es una llave simétrica (oct); solo se aceptan llaves públicas"
    if key.is_private:
        return "contiene la parte privada; registra solo la llave pública"
    if key.get("use") not in (None, "sig"):
        return "su «use» no es «sig»"
    ops = key.get("key_ops")
    if isinstance(ops, list) and "verify" not in ops:
        return "su «key_ops» no incluye «verify»"
    public = key.public_key
    if isinstance(public, RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        return f"la llave RSA tiene {public.key_size} bits; el mínimo es {MIN_RSA_BITS}"
    if not any(
        isinstance(key, kind) and (not curves or _curve(key) in curves)
        for kind, curves in _KEY_FITS.values()
    ):
        return "su tipo o curva no sirve para RS256, PS256, ES256 ni EdDSA"
    return None


def _entries(jwks: Mapping[str, Any]) -> list[Any]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    return list(keys) if isinstance(keys, list) else []


def load_client_keys(jwks: Mapping[str, Any]) -> list[ClientKey]:
    """The usable verification keys of a JWK Set; malformed or unsuitable entries are skipped,
    so one bad key never locks a client out of its good ones."""
    found: list[ClientKey] = []
    for entry in _entries(jwks):
        if not isinstance(entry, dict) or _why_not_imported(entry):
            continue
        try:
            key = import_key(entry)
            if _why_unusable(key) is None:
                found.append(ClientKey(kid=key.kid or key.thumbprint(), key=key))
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    return found


def check_client_jwks(jwks: Mapping[str, Any]) -> list[str]:
    """Validate a JWK Set before registering it; returns the key ids, raises :class:`UnusableJwks`.

    Stricter than :func:`load_client_keys`: at registration a bad entry is a mistake to report,
    not something to skip.
    """
    entries = _entries(jwks)
    if not entries:
        raise UnusableJwks("El JWKS debe ser un objeto con una lista «keys» no vacía.")
    kids: list[str] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise UnusableJwks(f"La llave {number} del JWKS no es un objeto JSON.")
        early = _why_not_imported(entry)
        if early:
            raise UnusableJwks(f"La llave {number} del JWKS no sirve: {early}.")
        try:
            key = import_key(entry)
        except (JoseError, ValueError, TypeError, KeyError):
            raise UnusableJwks(f"La llave {number} del JWKS no es un JWK válido.") from None
        reason = _why_unusable(key)
        if reason:
            raise UnusableJwks(f"La llave {number} del JWKS no sirve: {reason}.")
        kid = key.kid or key.thumbprint()
        if kid in kids:
            raise UnusableJwks(f"El «kid» {kid} aparece más de una vez en el JWKS.")
        kids.append(kid)
    return kids


def candidate_keys(keys: Sequence[ClientKey], alg: str, kid: str | None) -> list[Key]:
    """Keys that may have signed an assertion with header ``alg`` and ``kid``."""
    fit = _KEY_FITS.get(alg)
    if fit is None:
        return []
    kind, curves = fit
    out = []
    for entry in keys:
        key = entry.key
        if kid is not None and entry.kid != kid:
            continue
        if not isinstance(key, kind) or (curves and _curve(key) not in curves):
            continue
        if key.alg not in (None, alg):
            continue
        out.append(key)
    return out


def verify_with_any(assertion: str, keys: Sequence[Key], alg: str) -> dict[str, Any] | None:
    """The claims of ``assertion`` if one of ``keys`` verifies it under ``alg``, else ``None``."""
    registry = _AssertionRegistry(algorithms=[alg], strict_check_header=False)
    for key in keys:
        try:
            token = jwt.decode(assertion, key, registry=registry)
        except (JoseError, ValueError):
            continue
        return dict(token.claims)
    return None
