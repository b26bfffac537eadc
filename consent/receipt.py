"""Consent receipts: the artefact as a compact JWS the citizen (or anyone) can verify offline.

The JWS payload is the artefact's canonical encoding byte for byte, so a verifier that has the
receipt can recompute the version's digest and check it against the next version's
``predecessor_hash``. Every field is included: none is internal (the principal is the citizen
id, never the CURP; usage is two counters).

Header: ``alg`` EdDSA (Ed25519), ``kid`` of a key in the service's JWKS, ``typ``
``consent-receipt+jwt`` (RFC 8725 §3.11 explicit typing). The same key ring signs access
tokens, so the ``typ`` is what keeps a receipt from passing as a token and the other way round.

Verification is narrow on purpose: exactly these three header members, EdDSA only (no
``none``, no HMAC keyed with a public key), the key chosen only by ``kid`` among Ed25519 keys,
and a payload that must be a valid artefact in canonical form.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.artefact import ConsentArtefact
from consent.errors import ConsentInvalid, ReceiptInvalid

ALGORITHM = "EdDSA"
RECEIPT_TYP = "consent-receipt+jwt"
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})


def sign_receipt(artefact: ConsentArtefact, private_key: Ed25519PrivateKey, kid: str) -> str:
    """Compact JWS over the artefact's canonical encoding."""
    return jwt.PyJWS().encode(
        artefact.canonical_bytes(),
        private_key,
        algorithm=ALGORITHM,
        headers={"kid": kid, "typ": RECEIPT_TYP},
    )


def _public_key(jwks: Mapping[str, Any], kid: str) -> Ed25519PublicKey:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, Mapping) or jwk.get("kid") != kid:
            continue
        if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            return Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, binascii.Error):
            continue
    raise ReceiptInvalid("El comprobante fue firmado con una llave desconocida.")


def verify_receipt(jws: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The artefact (plain JSON values) of a receipt whose signature checks against ``jwks``
    (a JWK Set such as ``/.well-known/jwks.json``); ``ReceiptInvalid`` otherwise."""
    try:
        header = jwt.get_unverified_header(jws)
    except (jwt.PyJWTError, TypeError, ValueError):
        raise ReceiptInvalid("El comprobante no tiene el formato de un JWS compacto.") from None
    if set(header) != _HEADER_MEMBERS:
        raise ReceiptInvalid("El encabezado del comprobante no es el esperado.")
    if header["alg"] != ALGORITHM:
        raise ReceiptInvalid("El algoritmo del comprobante no está permitido.")
    if header["typ"] != RECEIPT_TYP:
        raise ReceiptInvalid("El documento no es un comprobante de consentimiento.")
    if not isinstance(header["kid"], str):
        raise ReceiptInvalid("El comprobante no indica su llave.")
    key = _public_key(jwks, header["kid"])
    try:
        payload = jwt.PyJWS().decode(jws, key, algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        raise ReceiptInvalid("La firma del comprobante no es válida.") from None
    try:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ReceiptInvalid("El comprobante no contiene un consentimiento.")
        artefact = ConsentArtefact.from_dict(data)
    except (ValueError, ConsentInvalid):
        raise ReceiptInvalid("El comprobante no contiene un consentimiento válido.") from None
    if artefact.canonical_bytes() != payload:
        raise ReceiptInvalid("El consentimiento del comprobante no está en forma canónica.")
    return data
