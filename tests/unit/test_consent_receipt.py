"""Consent receipts: compact EdDSA JWS of the canonical artefact, verified against a JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent.artefact import Actor, ConsentArtefact, LedgerAnchor, Purpose, digest_of
from consent.errors import ReceiptInvalid
from consent.machine import approve, request_consent
from consent.receipt import RECEIPT_TYP, sign_receipt, verify_receipt
from eidentity.assurance import AssuranceLevel
from eidentity.tokens import AccessTokens, KeyRing, SigningKey

T0 = datetime(2025, 8, 1, 9, 0, tzinfo=UTC)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks_for(*pairs: tuple[str, Ed25519PrivateKey]) -> dict[str, list[dict[str, str]]]:
    keys = []
    for kid, key in pairs:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        keys.append({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": "EdDSA"})
    return {"keys": keys}


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def artefact() -> ConsentArtefact:
    pending = request_consent(
        consent_id="c-77",
        principal="cit-1",
        consumer="bienestar",
        categories=["padron_bienestar"],
        purpose=Purpose("pension", "Confirmar tu registro para la pensión"),
        duration=timedelta(days=60),
        now=T0,
    ).artefact
    active = approve(pending, Actor.CITIZEN, T0 + timedelta(hours=1)).artefact
    return active.with_anchor(LedgerAnchor(leaf_index=41, checkpoint="carpeta.gob.mx/log 42"))


def test_round_trip(key: Ed25519PrivateKey, artefact: ConsentArtefact) -> None:
    receipt = sign_receipt(artefact, key, "k1")
    assert jwt.get_unverified_header(receipt) == {"alg": "EdDSA", "kid": "k1", "typ": RECEIPT_TYP}
    payload = verify_receipt(receipt, jwks_for(("k1", key)))
    assert payload == artefact.to_dict()
    assert ConsentArtefact.from_dict(payload) == artefact
    assert digest_of(payload) == artefact.digest()


def test_receipts_verify_against_the_service_jwks() -> None:
    ring = KeyRing([SigningKey.from_private_key(Ed25519PrivateKey.generate(), created_at=1)])
    pending = request_consent(
        consent_id="c-1",
        principal="cit-1",
        consumer="sat",
        categories=["acta_nacimiento"],
        purpose=Purpose("p", "texto"),
        duration=timedelta(days=1),
        now=T0,
    ).artefact
    receipt = sign_receipt(pending, ring.active.private_key, ring.active.kid)
    assert verify_receipt(receipt, ring.jwks())["consent_id"] == "c-1"


def _with_payload(receipt: str, payload: bytes) -> str:
    header, _, signature = receipt.split(".")
    return f"{header}.{b64url(payload)}.{signature}"


def test_tampered_payload_fails(key: Ed25519PrivateKey, artefact: ConsentArtefact) -> None:
    receipt = sign_receipt(artefact, key, "k1")
    data = artefact.to_dict()
    data["categories"] = ["expediente_clinico", "padron_bienestar"]
    forged = _with_payload(
        receipt, json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    )
    with pytest.raises(ReceiptInvalid, match="firma"):
        verify_receipt(forged, jwks_for(("k1", key)))
    header, payload, signature = receipt.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(ReceiptInvalid):
        verify_receipt(f"{header}.{payload}.{flipped}", jwks_for(("k1", key)))


def test_wrong_or_unknown_key_fails(key: Ed25519PrivateKey, artefact: ConsentArtefact) -> None:
    other = Ed25519PrivateKey.generate()
    receipt = sign_receipt(artefact, other, "k1")
    with pytest.raises(ReceiptInvalid, match="firma"):
        verify_receipt(receipt, jwks_for(("k1", key)))
    with pytest.raises(ReceiptInvalid, match="llave desconocida"):
        verify_receipt(sign_receipt(artefact, key, "k9"), jwks_for(("k1", key)))
    with pytest.raises(ReceiptInvalid, match="llave desconocida"):
        verify_receipt(sign_receipt(artefact, key, "k1"), {"keys": "nope"})


def _unsigned(header: dict[str, str], payload: bytes) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(payload)}."


def test_alg_none_and_hmac_confusion_are_refused(
    key: Ed25519PrivateKey, artefact: ConsentArtefact
) -> None:
    jwks = jwks_for(("k1", key))
    payload = artefact.canonical_bytes()
    none = _unsigned({"alg": "none", "kid": "k1", "typ": RECEIPT_TYP}, payload)
    with pytest.raises(ReceiptInvalid, match="algoritmo"):
        verify_receipt(none, jwks)
    # HS256 keyed with the public key's bytes: the classic algorithm-confusion forgery.
    header = {"alg": "HS256", "kid": "k1", "typ": RECEIPT_TYP}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    secret = jwks["keys"][0]["x"].encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(ReceiptInvalid, match="algoritmo"):
        verify_receipt(f"{signing_input}.{b64url(mac)}", jwks)


def test_only_consent_receipts_are_receipts(
    key: Ed25519PrivateKey, artefact: ConsentArtefact
) -> None:
    ring = KeyRing([SigningKey.from_private_key(key, created_at=1)])
    tokens = AccessTokens(ring, "https://carpeta", "https://carpeta", 300)
    token = tokens.issue_for_citizen("cit-1", AssuranceLevel.LOW, ["otp"], 1)
    with pytest.raises(ReceiptInvalid, match="no es un comprobante"):
        verify_receipt(token, ring.jwks())
    extra = jwt.PyJWS().encode(
        artefact.canonical_bytes(),
        key,
        algorithm="EdDSA",
        headers={"kid": "k1", "typ": RECEIPT_TYP, "jku": "https://example.invalid/jwks"},
    )
    with pytest.raises(ReceiptInvalid, match="encabezado"):
        verify_receipt(extra, jwks_for(("k1", key)))


def test_signed_but_non_canonical_or_invalid_payloads_are_refused(
    key: Ed25519PrivateKey, artefact: ConsentArtefact
) -> None:
    jwks = jwks_for(("k1", key))
    headers = {"kid": "k1", "typ": RECEIPT_TYP}
    spaced = json.dumps(artefact.to_dict(), sort_keys=True, ensure_ascii=False).encode()
    for payload, message in [
        (spaced, "forma canónica"),
        (b"[1, 2]", "no contiene un consentimiento"),
        (b"\xff\xfe", "no contiene un consentimiento"),
        (json.dumps({**artefact.to_dict(), "version": 0}).encode(), "no contiene"),
    ]:
        receipt = jwt.PyJWS().encode(payload, key, algorithm="EdDSA", headers=headers)
        with pytest.raises(ReceiptInvalid, match=message):
            verify_receipt(receipt, jwks)
    for garbage in ["", "a.b", "a.b.c", "ey.ey.ey"]:
        with pytest.raises(ReceiptInvalid):
            verify_receipt(garbage, jwks)
