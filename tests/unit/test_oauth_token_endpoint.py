"""The token endpoint service against real keys, real signatures and a real replay table.

Each refusal is checked for its RFC 6749 code and for the es-MX words that tell the agency's
developer what to fix. The client registry is the in-memory fake of the ``ClientStore`` port.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eidentity.clock import SettableClock
from eidentity.models import IdentityBase
from eidentity.oauth import InMemoryClientStore, OAuthError, TokenEndpoint, TokenGrant
from eidentity.oauth.errors import CLIENT_CHALLENGE
from eidentity.tokens import AccessTokens, KeyRing, SigningKey
from tests.unit.test_oauth_agency import (
    ISSUER,
    TOKEN_URL,
    Agency,
    _rsa,
    hmac_signed,
    public_jwk,
    token_form,
    unsigned,
)
from wallet.db import create_engine, session_factory

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(IdentityBase.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
def tokens(clock: SettableClock) -> AccessTokens:
    ring = KeyRing([SigningKey.from_private_key(Ed25519PrivateKey.generate(), 0)])
    return AccessTokens(ring, ISSUER, ISSUER, 300, now=lambda: clock.now().timestamp())


@pytest.fixture
def store() -> InMemoryClientStore:
    return InMemoryClientStore()


@pytest.fixture
def endpoint(
    store: InMemoryClientStore, tokens: AccessTokens, clock: SettableClock
) -> TokenEndpoint:
    return TokenEndpoint(store, tokens, TOKEN_URL, ISSUER, clock)


@pytest.fixture
def sat(store: InMemoryClientStore) -> Agency:
    agency = Agency("sat")
    store.put(agency.registered())
    return agency


def now_ts(clock: SettableClock) -> int:
    return int(clock.now().timestamp())


async def grant(endpoint: TokenEndpoint, session: AsyncSession, form: dict[str, str]) -> TokenGrant:
    result = await endpoint.handle(session, form)
    await session.commit()
    return result


async def refused(
    endpoint: TokenEndpoint, session: AsyncSession, form: dict[str, str]
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await endpoint.handle(session, form)
    await session.rollback()
    return caught.value


def assert_invalid_client(error: OAuthError, *words: str) -> None:
    assert error.error == "invalid_client"
    assert error.status == 401
    assert error.headers["WWW-Authenticate"] == CLIENT_CHALLENGE
    assert error.extensions["error"] == "invalid_client"
    for word in words:
        assert word in error.detail, error.detail


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"])
async def test_good_assertion_gets_a_scoped_access_token(
    alg: str,
    endpoint: TokenEndpoint,
    session: AsyncSession,
    store: InMemoryClientStore,
    tokens: AccessTokens,
    clock: SettableClock,
) -> None:
    agency = Agency("imss", alg=alg)
    if alg == "Ed25519":  # RFC 9864 name; PyJWT signs EdDSA, so relabel by hand
        agency = Agency("imss", alg="EdDSA")
    store.put(agency.registered())
    claims = agency.claims(now_ts(clock))
    assertion = agency.sign(claims, alg=alg) if alg != "Ed25519" else _relabel(agency, claims)
    result = await grant(endpoint, session, token_form(assertion))
    assert result.token_type == "Bearer"
    assert result.client_id == "imss"
    assert result.expires_in == 300
    assert result.scope == "consent:request data:request procedures:write records:write"
    verified = tokens.verify(result.access_token)
    assert verified.client_id == "imss" and verified.subject == "imss"
    assert verified.scopes == frozenset(result.scope.split())


def _relabel(agency: Agency, claims: dict[str, Any]) -> str:
    """Sign with Ed25519 under the RFC 9864 ``alg`` name ``Ed25519``."""
    from tests.unit.test_oauth_agency import b64url

    header = {"alg": "Ed25519", "typ": "JWT", "kid": agency.kid}
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    signature = agency.private_key.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url(signature)}"


async def test_requested_scope_subset_is_granted_exactly(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    form = token_form(sat.assertion(now_ts(clock)), scope="records:write procedures:write")
    result = await grant(endpoint, session, form)
    assert result.scope == "procedures:write records:write"


async def test_issuer_url_is_an_accepted_audience(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    for aud in (ISSUER, [TOKEN_URL], [TOKEN_URL, ISSUER]):
        await grant(endpoint, session, token_form(sat.assertion(now_ts(clock), aud=aud)))


async def test_matching_client_id_parameter_is_accepted(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    form = token_form(sat.assertion(now_ts(clock)), client_id="sat")
    assert (await grant(endpoint, session, form)).client_id == "sat"


async def test_assertion_without_iat_is_measured_from_our_clock(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    now = now_ts(clock)
    await grant(endpoint, session, token_form(sat.assertion(now, iat=None, lifetime=300)))
    error = await refused(endpoint, session, token_form(sat.assertion(now, iat=None, lifetime=400)))
    assert_invalid_client(error, "dura más")


async def test_small_clock_skew_is_tolerated(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    """An agency whose clock runs 20 s ahead still gets in (30 s leeway on iat/nbf/exp)."""
    ahead = now_ts(clock) + 20
    await grant(endpoint, session, token_form(sat.assertion(ahead, lifetime=300, nbf=ahead)))


# --- replay ---------------------------------------------------------------------------------


async def test_replayed_jti_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    assertion = sat.assertion(now_ts(clock))
    await grant(endpoint, session, token_form(assertion))
    clock.advance(10)
    assert_invalid_client(await refused(endpoint, session, token_form(assertion)), "ya se usó")
    # A fresh assertion reusing the jti is the same replay.
    jti = jwt.decode(assertion, options={"verify_signature": False})["jti"]
    again = sat.assertion(now_ts(clock), jti=jti)
    assert_invalid_client(await refused(endpoint, session, token_form(again)), "ya se usó")


async def test_jti_is_free_again_once_its_assertion_has_expired(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    first = sat.assertion(now_ts(clock), lifetime=60, jti="fixed")
    await grant(endpoint, session, token_form(first))
    clock.advance(60 + 30 + 1)  # lifetime + leeway
    assert_invalid_client(await refused(endpoint, session, token_form(first)), "expiró")
    await grant(endpoint, session, token_form(sat.assertion(now_ts(clock), jti="fixed")))


async def test_same_jti_from_two_clients_is_not_a_replay(
    endpoint: TokenEndpoint,
    session: AsyncSession,
    store: InMemoryClientStore,
    sat: Agency,
    clock: SettableClock,
) -> None:
    imss = Agency("imss", alg="ES256")
    store.put(imss.registered())
    await grant(endpoint, session, token_form(sat.assertion(now_ts(clock), jti="j-1")))
    await grant(endpoint, session, token_form(imss.assertion(now_ts(clock), jti="j-1")))


async def test_refused_request_does_not_spend_the_jti(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    assertion = sat.assertion(now_ts(clock))
    error = await refused(endpoint, session, token_form(assertion, scope="ledger:audit"))
    assert error.error == "invalid_scope"
    await grant(endpoint, session, token_form(assertion))


# --- claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    [
        "https://otro-servidor.example/oauth/token",
        ISSUER + "/oauth/token/",
        [TOKEN_URL, "https://otro-servidor.example"],
        [],
    ],
)
async def test_wrong_audience_is_refused(
    aud: Any, endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock), aud=aud)))
    assert_invalid_client(error, "aud")


async def test_expired_assertion_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    assertion = sat.assertion(now_ts(clock), lifetime=60)
    clock.advance(60 + 30 + 1)
    assert_invalid_client(await refused(endpoint, session, token_form(assertion)), "expiró")


async def test_assertion_living_longer_than_five_minutes_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    now = now_ts(clock)
    error = await refused(endpoint, session, token_form(sat.assertion(now, lifetime=301)))
    assert_invalid_client(error, "dura más", "300 segundos")
    backdated = sat.assertion(now, iat=now - 600, exp=now + 60)
    assert_invalid_client(await refused(endpoint, session, token_form(backdated)), "dura más")
    await grant(endpoint, session, token_form(sat.assertion(now, lifetime=300)))


async def test_not_yet_valid_assertion_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    now = now_ts(clock)
    error = await refused(endpoint, session, token_form(sat.assertion(now, nbf=now + 120)))
    assert_invalid_client(error, "nbf")
    error = await refused(endpoint, session, token_form(sat.assertion(now + 120, lifetime=60)))
    assert_invalid_client(error, "iat")


@pytest.mark.parametrize("missing", ["jti", "exp", "aud", "iss"])
async def test_assertion_missing_a_required_claim_is_refused(
    missing: str, endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    overrides: dict[str, Any] = {missing: None}
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock), **overrides)))
    assert_invalid_client(error, missing)


async def test_assertion_without_sub_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock), sub=None)))
    assert_invalid_client(error, "sub")


@pytest.mark.parametrize("claim", ["exp", "jti"])
async def test_claims_of_the_wrong_type_are_refused(
    claim: str, endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    overrides: dict[str, Any] = {claim: {"exp": "mañana", "jti": 12345}[claim]}
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock), **overrides)))
    assert_invalid_client(error, claim)


async def test_iss_different_from_sub_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock), iss="imss")))
    assert_invalid_client(error, "iss", "sub")


async def test_client_id_parameter_must_match_the_assertion(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    form = token_form(sat.assertion(now_ts(clock)), client_id="imss")
    assert_invalid_client(await refused(endpoint, session, form), "client_id")


# --- who is the client ----------------------------------------------------------------------


async def test_unknown_disabled_and_forged_answer_alike(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    """No way to tell which client ids exist: same code, status, detail and challenge."""
    now = now_ts(clock)
    unknown = Agency("no-existe")
    disabled = Agency("bienestar")
    store.put(disabled.registered(disabled=True))
    forged = Agency("renapo", alg="ES256")
    store.put(Agency("renapo", alg="ES256").registered())  # same kid, another key
    errors = [
        await refused(endpoint, session, token_form(agency.assertion(now)))
        for agency in (unknown, disabled, forged)
    ]
    for error in errors:
        assert_invalid_client(error, "no existe, está deshabilitado o la firma")
    rendered = {(e.status, e.detail, json.dumps(e.extensions), str(e.headers)) for e in errors}
    assert len(rendered) == 1


async def test_very_long_client_id_is_unknown_without_lookup(
    endpoint: TokenEndpoint, session: AsyncSession, clock: SettableClock
) -> None:
    agency = Agency("x" * 5000)
    assert_invalid_client(
        await refused(endpoint, session, token_form(agency.assertion(now_ts(clock))))
    )


async def test_key_rotation_old_key_refused_new_key_accepted(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    old = Agency("sep", alg="ES256", kid="2024")
    store.put(old.registered())
    await grant(endpoint, session, token_form(old.assertion(now_ts(clock))))
    new = Agency("sep", alg="EdDSA", kid="2025")
    store.put(new.registered())  # the operator ran `carpeta agency set-jwks`
    assert_invalid_client(
        await refused(endpoint, session, token_form(old.assertion(now_ts(clock))))
    )
    await grant(endpoint, session, token_form(new.assertion(now_ts(clock))))


async def test_kid_picks_the_key_and_no_kid_tries_each(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    """During a rotation both keys are registered; a stale kid is refused, not guessed around."""
    current = Agency("sat", alg="RS256", kid="nueva")
    previous_key = _rsa(1)
    current.extra_keys = [public_jwk(previous_key, "anterior")]
    store.put(current.registered())
    now = now_ts(clock)
    await grant(endpoint, session, token_form(current.assertion(now)))
    previous = Agency("sat", alg="RS256", kid="anterior", private_key=previous_key)
    await grant(endpoint, session, token_form(previous.assertion(now)))
    no_kid = Agency("sat", alg="RS256", kid=None, private_key=previous_key)
    await grant(endpoint, session, token_form(no_kid.assertion(now)))
    mislabelled = Agency("sat", alg="RS256", kid="nueva", private_key=previous_key)
    assert_invalid_client(await refused(endpoint, session, token_form(mislabelled.assertion(now))))


async def test_jwk_without_kid_is_named_by_its_thumbprint(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    from joserfc.jwk import import_key

    agency = Agency("ine", alg="ES256", kid=None)
    store.put(agency.registered())
    thumbprint = import_key(agency.jwks()["keys"][0]).thumbprint()
    signed = Agency("ine", alg="ES256", kid=thumbprint, private_key=agency.private_key)
    await grant(endpoint, session, token_form(signed.assertion(now_ts(clock))))


# --- algorithms -----------------------------------------------------------------------------


async def test_hs256_signed_with_the_public_key_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    jwk = sat.jwks()["keys"][0]
    pem = sat.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = sat.claims(now_ts(clock))
    for secret in (pem, json.dumps(jwk).encode(), jwk["n"].encode()):
        forged = hmac_signed(claims, secret, sat.kid)
        assert_invalid_client(await refused(endpoint, session, token_form(forged)), "alg")


async def test_alg_none_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    claims = sat.claims(now_ts(clock))
    for alg in ("none", "None", "NONE"):
        forged = unsigned({"alg": alg, "kid": sat.kid}, claims)
        assert_invalid_client(await refused(endpoint, session, token_form(forged)), "alg")


async def test_algorithm_outside_the_allow_list_is_refused(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    agency = Agency("sat", alg="RS256")
    agency.alg = "RS512"  # same RSA key, a hash we do not accept
    store.put(agency.registered())
    assert_invalid_client(
        await refused(endpoint, session, token_form(agency.assertion(now_ts(clock)))), "alg"
    )


async def test_alg_of_another_key_type_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    """An RSA-registered client cannot get in with an ES256 signature by some other key."""
    intruder = Agency("sat", alg="ES256", kid=sat.kid)
    assert_invalid_client(
        await refused(endpoint, session, token_form(intruder.assertion(now_ts(clock))))
    )


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")
async def test_weak_rsa_key_is_not_usable(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    weak = Agency("viejo", alg="RS256", private_key=_rsa(2, bits=1024))
    store.put(weak.registered())
    assert_invalid_client(
        await refused(endpoint, session, token_form(weak.assertion(now_ts(clock))))
    )


async def test_tampered_payload_is_refused(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    head, _, signature = sat.assertion(now_ts(clock)).split(".")
    other = sat.assertion(now_ts(clock), exp=now_ts(clock) + 200).split(".")[1]
    assert_invalid_client(
        await refused(endpoint, session, token_form(f"{head}.{other}.{signature}"))
    )


@pytest.mark.parametrize("garbage", ["no-es-un-jwt", "a.b.c", "e30.e30.", "W10.W10.AA"])
async def test_malformed_assertion_is_refused(
    garbage: str, endpoint: TokenEndpoint, session: AsyncSession, sat: Agency
) -> None:
    assert_invalid_client(await refused(endpoint, session, token_form(garbage)))


# --- scope and form -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        ("ledger:audit", ["ledger:audit"]),
        ("records:write admin", ["admin"]),
        ('records:write "x"', ["formato"]),
        ("récords:write", ["formato"]),
    ],
)
async def test_scope_outside_the_client_registration_is_invalid_scope(
    scope: str,
    words: list[str],
    endpoint: TokenEndpoint,
    session: AsyncSession,
    sat: Agency,
    clock: SettableClock,
) -> None:
    error = await refused(endpoint, session, token_form(sat.assertion(now_ts(clock)), scope=scope))
    assert error.error == "invalid_scope" and error.status == 400
    for word in words:
        assert word in error.detail


async def test_client_without_scopes_gets_no_token(
    endpoint: TokenEndpoint, store: InMemoryClientStore, session: AsyncSession, clock: SettableClock
) -> None:
    agency = Agency("vacio", scopes=frozenset())
    store.put(agency.registered())
    error = await refused(endpoint, session, token_form(agency.assertion(now_ts(clock))))
    assert error.error == "invalid_scope"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token", "x"])
async def test_other_grant_types_are_unsupported(
    grant_type: str,
    endpoint: TokenEndpoint,
    session: AsyncSession,
    sat: Agency,
    clock: SettableClock,
) -> None:
    form = token_form(sat.assertion(now_ts(clock)), grant_type=grant_type)
    error = await refused(endpoint, session, form)
    assert error.error == "unsupported_grant_type" and error.status == 400
    assert "client_credentials" in error.detail


async def test_missing_grant_type_is_invalid_request(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    form = token_form(sat.assertion(now_ts(clock)))
    del form["grant_type"]
    error = await refused(endpoint, session, form)
    assert error.error == "invalid_request" and error.status == 400


@pytest.mark.parametrize(
    "change",
    [
        {"client_assertion_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"},
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
        {"client_assertion_type": None},
        {"client_assertion": None},
    ],
)
async def test_wrong_or_missing_assertion_type_is_invalid_client(
    change: dict[str, str | None],
    endpoint: TokenEndpoint,
    session: AsyncSession,
    sat: Agency,
    clock: SettableClock,
) -> None:
    form = token_form(sat.assertion(now_ts(clock)))
    for name, value in change.items():
        if value is None:
            del form[name]
        else:
            form[name] = value
    assert_invalid_client(await refused(endpoint, session, form), "private_key_jwt")


async def test_error_description_is_rfc6749_ascii(
    endpoint: TokenEndpoint, session: AsyncSession, sat: Agency, clock: SettableClock
) -> None:
    assertion = sat.assertion(now_ts(clock), lifetime=60)
    clock.advance(600)
    error = await refused(endpoint, session, token_form(assertion))
    description = error.extensions["error_description"]
    assert description == "La asercion ya expiro (exp)."
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description)
    assert error.slug == "oauth/invalid_client"


def test_metadata_describes_the_endpoint(endpoint: TokenEndpoint) -> None:
    meta = endpoint.metadata()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == TOKEN_URL
    assert meta["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    algs = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert {"RS256", "PS256", "ES256", "EdDSA"} <= set(algs)
    assert not any(a.startswith("HS") or a.lower() == "none" for a in algs)
    assert "ledger:audit" in meta["scopes_supported"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_assertion_lifetime": 301}, "5 minutes"),
        ({"token_url": "http://carpeta.example/oauth/token"}, "https"),
    ],
)
def test_endpoint_refuses_unsafe_configuration(
    kwargs: dict[str, Any],
    message: str,
    store: InMemoryClientStore,
    tokens: AccessTokens,
    clock: SettableClock,
) -> None:
    args: dict[str, Any] = {"token_url": TOKEN_URL, "issuer": ISSUER, **kwargs}
    with pytest.raises(ValueError, match=message):
        TokenEndpoint(store, tokens, clock=clock, **args)
