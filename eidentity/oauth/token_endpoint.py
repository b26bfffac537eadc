"""The token endpoint as a service: a form in, a signed access token (or an OAuth error) out.

Order of checks, each refusal with its own RFC 6749 code: form shape and grant type; the
assertion's shape and ``alg`` (same answer for every client id); the client, loaded
asynchronously (unknown and disabled answer like a bad signature); signature and claims by
Authlib's RFC 7523 client authentication; scope; then the ``jti`` goes into the shared replay
cache, last, so only a request that would otherwise succeed can spend it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.common.security import is_secure_transport
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.clock import Clock
from eidentity.oauth.clients import KNOWN_SCOPES, ClientStore
from eidentity.oauth.errors import InvalidClient
from eidentity.oauth.keys import ALLOWED_ALGORITHMS, load_client_keys
from eidentity.oauth.models import CLIENT_ID_MAX, purge_expired, use_jti
from eidentity.oauth.protocol import (
    AUTH_METHOD,
    GRANT_TYPE,
    UNAUTHENTIC,
    AssertionRules,
    TokenExchange,
)
from eidentity.tokens import AccessTokens

#: RFC 7523 leaves the assertion lifetime to the server; SPEC says five minutes at most.
MAX_ASSERTION_LIFETIME = 300
#: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
LEEWAY = 30


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A successful RFC 6749 §5.1 answer (no refresh token: clients simply authenticate again)."""

    client_id: str
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class TokenEndpoint:
    """Client credentials with ``private_key_jwt`` (RFC 6749 §4.4, RFC 7523 §2.2).

    ``token_url`` is the endpoint's public URL (``{CARPETA_PUBLIC_URL}/oauth/token``) and the
    audience clients must put in their assertions; the ``issuer`` URL is accepted as well, as
    RFC 7523 §3 allows any value that identifies the authorization server.
    """

    def __init__(
        self,
        store: ClientStore,
        tokens: AccessTokens,
        token_url: str,
        issuer: str,
        clock: Clock,
        max_assertion_lifetime: int = MAX_ASSERTION_LIFETIME,
        *,
        leeway: int = LEEWAY,
        scopes_supported: Collection[str] = KNOWN_SCOPES,
    ) -> None:
        if not 0 < max_assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError("client assertions may live at most 5 minutes")
        if not 0 <= leeway <= 120:
            raise ValueError("leeway must be between 0 and 120 seconds")
        for url in (token_url, issuer):
            # Authlib refuses plain http (other than loopback) per request; fail at start-up.
            if not is_secure_transport(url):
                raise ValueError(f"OAuth needs https (or a loopback address): {url}")
        self.store = store
        self.tokens = tokens
        self.token_url = token_url
        self.issuer = issuer.rstrip("/")
        self.clock = clock
        self.rules = AssertionRules(
            audiences=(token_url, self.issuer),
            max_lifetime=max_assertion_lifetime,
            leeway=leeway,
        )
        self.scopes_supported = tuple(sorted(scopes_supported))

    async def handle(self, session: AsyncSession, form: Mapping[str, str]) -> TokenGrant:
        """Issue a token or raise :class:`~eidentity.oauth.errors.OAuthError`.

        Writes the assertion's ``jti`` through ``session``; the caller commits.
        """
        now = self.clock.now()
        now_ts = int(now.timestamp())

        def issue(client_id: str, scopes: Sequence[str]) -> str:
            return self.tokens.issue_for_client(client_id, scopes, now_ts)

        exchange = TokenExchange(form, self.token_url, self.rules, now_ts, issue, self.tokens.ttl)
        exchange.select_grant()
        client_id = exchange.claimed_client_id()
        client = await self.store.get(client_id) if len(client_id) <= CLIENT_ID_MAX else None
        if client is None or client.disabled or client.client_id != client_id:
            raise InvalidClient(UNAUTHENTIC)
        body, used = exchange.authenticate_and_issue(client, load_client_keys(client.jwks))
        expires_at = datetime.fromtimestamp(used.expires_at + self.rules.leeway, UTC)
        if not await use_jti(session, used.client_id, used.jti, expires_at, now):
            raise InvalidClient("La aserción ya se usó: cada client_assertion lleva un jti nuevo.")
        await purge_expired(session, now, client_id=used.client_id)
        return TokenGrant(
            client_id=client.client_id,
            access_token=str(body["access_token"]),
            token_type=str(body["token_type"]),
            expires_in=int(body["expires_in"]),
            scope=str(body["scope"]),
        )

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata.

        ``response_types_supported`` is REQUIRED by RFC 8414 but we have no authorization
        endpoint, so it is honestly empty.
        """
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "scopes_supported": list(self.scopes_supported),
            "response_types_supported": [],
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_methods_supported": [AUTH_METHOD],
            "token_endpoint_auth_signing_alg_values_supported": list(ALLOWED_ALGORITHMS),
        }
