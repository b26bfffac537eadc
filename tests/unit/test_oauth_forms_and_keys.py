"""Pure parts of the token endpoint: form parsing, error rendering, client JWKS rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from eidentity.oauth import UnusableJwks, check_client_jwks
from eidentity.oauth.errors import InvalidClient, InvalidScope, ascii_description, from_authlib
from eidentity.oauth.forms import parse_token_form
from eidentity.oauth.keys import candidate_keys, load_client_keys
from tests.unit.test_oauth_agency import _rsa, public_jwk

# --- forms ----------------------------------------------------------------------------------


def test_form_is_decoded_with_plus_and_percent_escapes() -> None:
    body = b"grant_type=client_credentials&scope=records%3Awrite+procedures%3Awrite"
    assert parse_token_form(body) == {
        "grant_type": "client_credentials",
        "scope": "records:write procedures:write",
    }


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&grant_type=password",
        b"scope=a&grant_type=client_credentials&scope=b",
        b"grant_type=&grant_type=client_credentials",
    ],
)
def test_repeated_parameter_is_invalid_request(body: bytes) -> None:
    with pytest.raises(Exception) as caught:
        parse_token_form(body)
    assert getattr(caught.value, "error", None) == "invalid_request"
    assert "más de una vez" in str(caught.value)


def test_parameters_without_value_count_as_absent() -> None:
    assert parse_token_form(b"grant_type=client_credentials&scope=&client_id") == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe=1", b"scope=%FF%FE", b"&".join(b"f%d=1" % i for i in range(100))],
)
def test_undecodable_or_huge_form_is_invalid_request(body: bytes) -> None:
    with pytest.raises(Exception) as caught:
        parse_token_form(body)
    assert getattr(caught.value, "error", None) == "invalid_request"


# --- errors ---------------------------------------------------------------------------------


def test_ascii_description_folds_spanish_and_drops_forbidden_characters() -> None:
    text = 'La aserción «ya» se usó; ¿jti "nuevo"? \\ ñandú'
    assert ascii_description(text) == "La asercion 'ya' se uso; jti 'nuevo'? / nandu"


def test_oauth_error_carries_rfc6749_fields_and_problem_slug() -> None:
    error = InvalidScope("No autorizado: ledger:audit.")
    assert error.slug == "oauth/invalid_scope" and error.status == 400
    assert error.extensions == {
        "error": "invalid_scope",
        "error_description": "No autorizado: ledger:audit.",
    }
    client = InvalidClient()
    assert client.status == 401 and "WWW-Authenticate" in client.headers
    assert client.title.startswith("No pudimos")


def test_authlib_errors_keep_their_code() -> None:
    from authlib.oauth2.rfc6749 import InvalidClientError, UnsupportedGrantTypeError

    ours = from_authlib(UnsupportedGrantTypeError("password"))
    assert ours.error == "unsupported_grant_type"
    assert ours.extensions["error_description"] == "grant_type=password is not supported"
    assert from_authlib(InvalidClientError()).status == 401


# --- client keys ----------------------------------------------------------------------------


def _ec_jwk(kid: str | None = "e1") -> dict[str, object]:
    jwk = dict(
        ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    )
    if kid:
        jwk["kid"] = kid
    return jwk


def test_registrable_jwks_lists_its_key_ids() -> None:
    jwks = {"keys": [public_jwk(_rsa(0), "r1"), _ec_jwk("e1")]}
    assert check_client_jwks(jwks) == ["r1", "e1"]


@pytest.mark.parametrize(
    ("jwks", "words"),
    [
        ({}, "no vacía"),
        ({"keys": []}, "no vacía"),
        ({"keys": ["x"]}, "objeto JSON"),
        ({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}, "no es un JWK"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "simétrica"),
        ({"keys": [{**_ec_jwk(), "use": "enc"}]}, "use"),
        ({"keys": [{**_ec_jwk(), "key_ops": ["encrypt"]}]}, "key_ops"),
        ({"keys": [_ec_jwk("a"), _ec_jwk("a")]}, "más de una vez"),
    ],
)
def test_unusable_jwks_is_refused_with_the_reason(jwks: dict[str, object], words: str) -> None:
    with pytest.raises(UnusableJwks, match=words):
        check_client_jwks(jwks)


def test_private_keys_and_weak_rsa_are_refused_at_registration() -> None:
    private = dict(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True))
    with pytest.raises(UnusableJwks, match="privada"):
        check_client_jwks({"keys": [private]})
    with pytest.raises(UnusableJwks, match="1024 bits"):
        check_client_jwks({"keys": [public_jwk(_rsa(2, bits=1024), "w")]})
    p384 = dict(
        ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True)
    )
    with pytest.raises(UnusableJwks, match="curva"):
        check_client_jwks({"keys": [p384]})


def test_loading_skips_bad_entries_and_keeps_good_ones() -> None:
    okp = dict(OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), as_dict=True))
    jwks = {"keys": ["x", {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA"}, okp]}
    [loaded] = load_client_keys(jwks)
    assert loaded.kid  # RFC 7638 thumbprint stands in for the missing kid
    assert load_client_keys({"keys": "nope"}) == []


def test_candidates_follow_alg_kid_and_declared_alg() -> None:
    ec_key = {**_ec_jwk("e1"), "alg": "ES256"}
    keys = load_client_keys(
        {"keys": [public_jwk(_rsa(0), "r1"), ec_key, public_jwk(_rsa(1), "r2")]}
    )
    assert len(candidate_keys(keys, "RS256", None)) == 2
    assert len(candidate_keys(keys, "PS256", "r2")) == 1
    assert candidate_keys(keys, "ES256", "r1") == []
    assert len(candidate_keys(keys, "ES256", None)) == 1
    assert candidate_keys(keys, "HS256", None) == []
    assert candidate_keys(keys, "none", None) == []
    declared = load_client_keys({"keys": [{**public_jwk(_rsa(0), "r1"), "alg": "PS256"}]})
    assert candidate_keys(declared, "RS256", None) == []
    assert len(candidate_keys(declared, "PS256", None)) == 1
