"""Agencies and regulators as OAuth 2.0 clients: client credentials with ``private_key_jwt``.

The wallet supplies a :class:`ClientStore` over its agency registry, builds one
:class:`TokenEndpoint`, provides it as the ``token_endpoint`` dependency and mounts
:class:`OAuthController` and :func:`oauth_metadata`. The replay cache table
(``oauth_assertion_jtis``) lives on ``IdentityBase.metadata``.
"""

from eidentity.oauth.clients import (
    AGENCY_SCOPES,
    KNOWN_SCOPES,
    REGULATOR_SCOPES,
    ClientStore,
    InMemoryClientStore,
    RegisteredClient,
)
from eidentity.oauth.controllers import OAuthController, oauth_metadata
from eidentity.oauth.errors import OAuthError
from eidentity.oauth.keys import UnusableJwks, check_client_jwks
from eidentity.oauth.models import AssertionJti, purge_expired
from eidentity.oauth.token_endpoint import TokenEndpoint, TokenGrant

__all__ = [
    "AGENCY_SCOPES",
    "KNOWN_SCOPES",
    "REGULATOR_SCOPES",
    "AssertionJti",
    "ClientStore",
    "InMemoryClientStore",
    "OAuthController",
    "OAuthError",
    "RegisteredClient",
    "TokenEndpoint",
    "TokenGrant",
    "UnusableJwks",
    "check_client_jwks",
    "oauth_metadata",
    "purge_expired",
]
