"""Route guards: who is calling, and at what assurance.

The app puts its :class:`~eidentity.tokens.AccessTokens` in ``app.state`` under
:data:`STATE_KEY`. A guard verifies the bearer token once per request, keeps the claims in the
connection scope, and refuses with 401 — naming the level needed when it is a step-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from eidentity.assurance import AssuranceLevel, step_up_challenge
from eidentity.errors import IdentityError, InsufficientAssurance, Unauthenticated
from eidentity.tokens import AccessClaims, AccessTokens

STATE_KEY = "access_tokens"
_SCOPE_KEY = "carpeta.claims"

# Async so Litestar calls them on the event loop instead of hopping to a worker thread.
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class WrongPrincipal(IdentityError):
    """A valid token of the wrong kind (an agency on a citizen route, or the reverse)."""

    slug = "forbidden"
    title = "Esta credencial no sirve para esta operación."
    status = 403


class MissingScope(IdentityError):
    slug = "insufficient-scope"
    title = "La credencial no tiene el permiso (scope) necesario."
    status = 403


def _authorization(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The ``Authorization`` header, read straight from the ASGI scope (building Litestar's
    header mapping for one value costs more than the rest of a cached token check)."""
    for name, value in connection.scope["headers"]:
        if name.lower() == b"authorization":
            return value.decode("latin-1")
    return ""


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = _authorization(connection)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        error = Unauthenticated()
        error.headers = {"WWW-Authenticate": 'Bearer realm="carpeta"'}
        raise error
    return token.strip()


def claims_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessClaims:
    """Verified claims for this request (verifying the token on first use)."""
    cached = connection.scope.get(_SCOPE_KEY)
    if isinstance(cached, AccessClaims):
        return cached
    tokens: AccessTokens = connection.app.state[STATE_KEY]
    try:
        claims = tokens.verify(_bearer(connection))
    except IdentityError as exc:
        if not exc.headers:
            exc.headers = {"WWW-Authenticate": 'Bearer realm="carpeta", error="invalid_token"'}
        raise
    connection.scope[_SCOPE_KEY] = claims  # type: ignore[literal-required]
    return claims


def client_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The agency (OAuth client) behind this request, on a route guarded by
    :func:`requires_client` (which refuses citizens, so there always is one)."""
    client_id = claims_of(connection).client_id
    if client_id is None:  # a route without requires_client: fail closed
        raise WrongPrincipal()
    return client_id


def requires_citizen(level: AssuranceLevel = AssuranceLevel.LOW) -> Guard:
    """Allow citizens whose session reached ``level``; others get a step-up 401."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        claims = claims_of(connection)
        if not claims.is_citizen:
            raise WrongPrincipal()
        if not claims.acr.satisfies(level):
            error = InsufficientAssurance(
                f"Esta acción requiere nivel de seguridad «{level.value}»; tu sesión es "
                f"«{claims.acr.value}».",
                required_acr=level.value,
            )
            error.headers = {"WWW-Authenticate": step_up_challenge(level)}
            raise error

    guard.__name__ = f"requires_citizen_{level.value}"
    return guard


def requires_client(*scopes: str) -> Guard:
    """Allow OAuth clients (agencies, regulators) holding every one of ``scopes``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        claims = claims_of(connection)
        if claims.is_citizen:
            raise WrongPrincipal()
        missing = [s for s in scopes if s not in claims.scopes]
        if missing:
            error = MissingScope(f"Falta el scope: {' '.join(missing)}.")
            error.headers = {
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
            }
            raise error

    return guard
