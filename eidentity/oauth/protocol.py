"""Authlib's RFC 6749 / RFC 7523 machinery, bound to one token request.

Authlib's server core is synchronous and looks clients up by calling ``query_client``; our
client registry is asynchronous. So a request runs in three steps: :meth:`TokenExchange.
claimed_client_id` reads the (still unverified) ``sub``, the caller loads that client
asynchronously, then :meth:`TokenExchange.authenticate_and_issue` lets Authlib run the grant and
client authentication against the preloaded client. Everything Authlib needs lives in objects
made for this request only, so concurrent requests share no mutable state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientCredentialsGrant,
    ClientMixin,
    OAuth2Error,
    OAuth2Request,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from eidentity.oauth.clients import RegisteredClient
from eidentity.oauth.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    UnsupportedGrantType,
    from_authlib,
)
from eidentity.oauth.keys import ALLOWED_ALGORITHMS, ClientKey, candidate_keys, verify_with_any

AUTH_METHOD = "private_key_jwt"
GRANT_TYPE = "client_credentials"
ASSERTION_TYPE: str = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE

#: One answer for "no such client", "client disabled" and "signature does not verify", so the
#: token endpoint cannot be used to learn which client ids exist.
UNAUTHENTIC = (
    "No pudimos verificar la aserción del cliente: el cliente no existe, está deshabilitado o "
    "la firma no corresponde a sus llaves registradas."
)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_CLAIM_PROBLEMS = {
    "aud": "La audiencia (aud) de la aserción no es válida.",
    "exp": "La expiración (exp) de la aserción no es válida.",
    "iat": "La aserción dice haber sido emitida en el futuro (iat); revisa el reloj del cliente.",
    "nbf": "La aserción todavía no es válida (nbf).",
    "iss": "El emisor (iss) de la aserción no es válido.",
    "sub": "El sujeto (sub) de la aserción no es válido.",
    "jti": "El identificador (jti) de la aserción no es válido.",
}


@dataclass(frozen=True, slots=True)
class AssertionRules:
    """What a client assertion must satisfy beyond its signature."""

    audiences: tuple[str, ...]  # the token endpoint URL first: the one clients should use
    max_lifetime: int
    leeway: int


@dataclass(frozen=True, slots=True)
class UsedAssertion:
    """The assertion that authenticated a request, for the replay cache."""

    client_id: str
    jti: str
    expires_at: int


def granted_scopes(requested: str | None, allowed: frozenset[str]) -> tuple[str, ...]:
    """RFC 6749 §3.3: the requested scopes if all are the client's; all of them if none asked."""
    if not requested:
        if not allowed:
            raise InvalidScope("El cliente no tiene ningún scope registrado.")
        return tuple(sorted(allowed))
    wanted = [token for token in requested.split(" ") if token]
    if not wanted or not all(_SCOPE_TOKEN.fullmatch(token) for token in wanted):
        raise InvalidScope("El parámetro scope no tiene el formato de RFC 6749 §3.3.")
    extra = sorted(set(wanted) - allowed)
    if extra:
        raise InvalidScope(f"El cliente no tiene autorizado: {' '.join(extra)}.")
    return tuple(sorted(set(wanted)))


class _Redacted(dict[str, Any]):
    """A token response whose ``repr`` hides the token: Authlib logs the response at DEBUG."""

    def __repr__(self) -> str:
        return "{<token response>}"


class AuthlibClient(ClientMixin):  # type: ignore[misc]
    """A :class:`RegisteredClient` as Authlib's ``ClientMixin`` sees it."""

    def __init__(self, registered: RegisteredClient, keys: Sequence[ClientKey]) -> None:
        self.registered = registered
        self.keys = list(keys)

    def __repr__(self) -> str:
        return f"<client {self.registered.client_id}>"

    def get_client_id(self) -> str:
        return self.registered.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(granted_scopes(scope, self.registered.scopes))


class _PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 §2.2 client authentication with our key choice, clock and claim rules."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self, rules: AssertionRules, now: int) -> None:
        super().__init__(validate_jti=True, leeway=rules.leeway)
        self.rules = rules
        self.now = now
        self.used: UsedAssertion | None = None

    def get_audiences(self) -> list[str]:
        return list(self.rules.audiences)

    def resolve_client_public_key(self, client: AuthlibClient) -> list[ClientKey]:
        return client.keys

    def process_assertion_claims(self, assertion: str, keys: list[ClientKey]) -> dict[str, Any]:
        """Signature by one of the client's keys (chosen by ``kid``, else each that fits)."""
        header, _ = self.extract_assertion(assertion)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS or not (kid is None or isinstance(kid, str)):
            raise InvalidClient(UNAUTHENTIC)
        claims = verify_with_any(assertion, candidate_keys(keys, alg, kid), alg)
        if claims is None:
            raise InvalidClient(UNAUTHENTIC)
        self.verify_claims(claims)
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        """RFC 7523 §3, checked only after the signature: details help the real client only."""
        essential: Any = {"essential": True}
        registry = JWTClaimsRegistry(
            now=self.now,
            leeway=self.rules.leeway,
            iss=essential,
            sub=essential,
            aud=essential,
            exp=essential,
            jti=essential,
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidClient("La aserción ya expiró (exp).") from None
        except MissingClaimError as exc:
            names = ", ".join(exc.claim.split(","))
            raise InvalidClient(f"Faltan claims obligatorios en la aserción: {names}.") from None
        except InvalidClaimError as exc:
            raise InvalidClient(_CLAIM_PROBLEMS.get(exc.claim, UNAUTHENTIC)) from None
        except JoseError:
            raise InvalidClient(UNAUTHENTIC) from None
        if claims["iss"] != claims["sub"]:
            raise InvalidClient("El emisor (iss) y el sujeto (sub) deben ser ambos el client_id.")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not all(aud in self.rules.audiences for aud in audiences):
            expected = " o ".join(self.rules.audiences)
            raise InvalidClient(f"La audiencia (aud) de la aserción debe ser {expected}.")
        self._check_lifetime(claims)
        if not self.validate_jti(claims, claims["jti"]):
            raise InvalidClient("La aserción ya se usó.")  # pragma: no cover - see validate_jti

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """At most ``max_lifetime`` seconds. With ``iat``, both ends come from the client's own
        clock, so skew cancels out; without it, ``exp`` is measured from our clock, with leeway."""
        exp, iat = claims["exp"], claims.get("iat")
        limit = self.rules.max_lifetime
        too_long = (
            exp - iat > limit if iat is not None else exp - self.now > limit + self.rules.leeway
        )
        if too_long:
            raise InvalidClient(
                f"La aserción dura más de lo permitido: exp debe quedar a {limit} segundos o "
                "menos de su emisión."
            )

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Only noted here; the database decides replays once the request is otherwise valid."""
        self.used = UsedAssertion(client_id=claims["sub"], jti=jti, expires_at=int(claims["exp"]))
        return True


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def validate_requested_scope(self) -> None:
        granted_scopes(self.request.payload.scope, self.request.client.registered.scopes)


class _FormRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, form: Mapping[str, str], uri: str) -> None:
        super().__init__("POST", uri)
        self._form = dict(form)
        self.payload = BasicOAuth2Payload(self._form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


Issuer = Callable[[str, Sequence[str]], str]


class _Server(AuthorizationServer):  # type: ignore[misc]
    """An Authlib authorization server that lives for one request."""

    def __init__(self, auth: _PrivateKeyJWT, issue: Issuer, expires_in: int) -> None:
        super().__init__()
        self.client: AuthlibClient | None = None
        self._issue = issue
        self._expires_in = expires_in
        self.register_client_auth_method(AUTH_METHOD, auth)
        self.register_grant(_ClientCredentials)
        self.register_token_generator(GRANT_TYPE, self._generate)

    def query_client(self, client_id: str) -> AuthlibClient | None:
        client = self.client
        if client is None or client.get_client_id() != client_id or client.registered.disabled:
            return None
        return client

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to store: access tokens are self-contained signed JWTs."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system here."""

    def _generate(
        self, grant_type: str, client: AuthlibClient, scope: str | None = None, **_: Any
    ) -> dict[str, Any]:
        scopes = granted_scopes(scope, client.registered.scopes)
        return _Redacted(
            access_token=self._issue(client.get_client_id(), scopes),
            token_type="Bearer",
            expires_in=self._expires_in,
            scope=" ".join(scopes),
        )


class TokenExchange:
    """One ``POST /oauth/token``, from form to token response, minus the asynchronous parts."""

    def __init__(
        self,
        form: Mapping[str, str],
        token_url: str,
        rules: AssertionRules,
        now: int,
        issue: Issuer,
        expires_in: int,
    ) -> None:
        self.form = form
        self.request = _FormRequest(form, token_url)
        self.auth = _PrivateKeyJWT(rules, now)
        self.server = _Server(self.auth, issue, expires_in)
        self.grant: Any = None

    def select_grant(self) -> None:
        """RFC 6749 §4.4: the grant type, before anything about the client is looked up."""
        if not self.form.get("grant_type"):
            raise InvalidRequest("Falta el parámetro grant_type (usa client_credentials).")
        try:
            self.grant = self.server.get_token_grant(self.request)
        except UnsupportedGrantTypeError:
            raise UnsupportedGrantType("Solo se admite grant_type=client_credentials.") from None
        except OAuth2Error as exc:  # pragma: no cover - Authlib raises only the one above
            raise from_authlib(exc) from None

    def claimed_client_id(self) -> str:
        """The client the assertion claims to be, read before any verification.

        Checks that do not depend on the client (assertion type, shape, ``alg``) happen here, so
        their answers are the same for every client id, registered or not.
        """
        form = self.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise InvalidClient(
                "Autentica al cliente con private_key_jwt: envía client_assertion_type="
                f"{ASSERTION_TYPE} y client_assertion (RFC 7523)."
            )
        try:
            header, claims = self.auth.extract_assertion(assertion)
        except OAuth2Error:
            raise InvalidClient("client_assertion no es un JWT firmado bien formado.") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            allowed = ", ".join(ALLOWED_ALGORITHMS)
            raise InvalidClient(
                f"El algoritmo (alg) de la aserción no está permitido: usa {allowed}."
            )
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidClient("La aserción no indica el client_id en «sub».")
        client_id = form.get("client_id")
        if client_id is not None and client_id != subject:
            raise InvalidClient("El parámetro client_id no coincide con el «sub» de la aserción.")
        return subject

    def authenticate_and_issue(
        self, client: RegisteredClient, keys: Sequence[ClientKey]
    ) -> tuple[dict[str, Any], UsedAssertion]:
        """Authlib authenticates the client and runs the grant; our errors pass through."""
        self.server.client = AuthlibClient(client, keys)
        try:
            self.grant.validate_token_request()
            _, body, _ = self.grant.create_token_response()
        except OAuth2Error as exc:
            raise from_authlib(exc) from None
        used = self.auth.used
        if used is None:  # pragma: no cover - Authlib always validates the jti on success
            raise InvalidClient(UNAUTHENTIC)
        return dict(body), used
