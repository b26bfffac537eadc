"""Who owns an ``Idempotency-Key``: the verified token's principal, or the client address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request

from eidentity.errors import IdentityError
from eidentity.guards import claims_of


def bearer_or_address(
    address: Callable[[Request[Any, Any, Any]], str],
) -> Callable[[Request[Any, Any, Any]], str | None]:
    """A principal resolver for :class:`~wallet.lowband.idempotency.IdempotencyConfig`.

    ``citizen:<id>`` or ``client:<client_id>`` from a bearer token that verifies (the claims are
    cached in the scope, so the route's guard doesn't verify twice); ``address:<ip>`` without an
    ``Authorization`` header; ``None`` (no idempotency) when the token doesn't verify — the
    route will refuse the request anyway and nothing should be recorded under a forged name.
    """

    def resolve(request: Request[Any, Any, Any]) -> str | None:
        if "authorization" not in request.headers:
            return f"address:{address(request)}"
        try:
            claims = claims_of(request)
        except IdentityError:
            return None
        if claims.client_id is not None:
            return f"client:{claims.client_id}"
        return f"citizen:{claims.subject}"

    return resolve
