"""Registered OAuth clients (agencies, regulators) as a port the wallet implements.

The token endpoint needs only "who is this client, which public keys does it sign with, which
scopes may it have, is it switched off"; where that lives (the wallet's agency registry) is not
this package's business, so it asks through :class:`ClientStore`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Scopes an agency may hold (SPEC, "Agencies are OAuth 2.0 clients").
AGENCY_SCOPES = frozenset({"procedures:write", "records:write", "consent:request", "data:request"})
#: Scopes of a regulator or auditor client.
REGULATOR_SCOPES = frozenset({"ledger:audit"})
KNOWN_SCOPES = AGENCY_SCOPES | REGULATOR_SCOPES


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """What the token endpoint knows of a client. ``jwks`` is a JWK Set (``{"keys": [...]}``)."""

    client_id: str
    name: str
    jwks: dict[str, Any] = field(hash=False)
    scopes: frozenset[str]
    disabled: bool = False


class ClientStore(Protocol):
    """Where registered clients come from. ``None`` for an unknown id."""

    async def get(self, client_id: str) -> RegisteredClient | None: ...


class InMemoryClientStore:
    """A :class:`ClientStore` over a dict: tests, and anything without a registry."""

    def __init__(self, clients: Iterable[RegisteredClient] = ()) -> None:
        self._clients = {c.client_id: c for c in clients}

    def put(self, client: RegisteredClient) -> None:
        """Add or replace (key rotation, disabling) a client."""
        self._clients[client.client_id] = client

    async def get(self, client_id: str) -> RegisteredClient | None:
        return self._clients.get(client_id)
