"""Test agencies: real Ed25519 keys, registered through the real registry, tokens obtained
from the real token endpoint with RFC 7523 assertions signed by PyJWT."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from litestar.testing import AsyncTestClient

from tests.integration.helpers import bearer, in_app_loop, services_of
from wallet.agencies.registry import AgencyRegistry, LegalBasis

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_CATEGORIES = ("acta_nacimiento", "constancia_situacion_fiscal", "expediente_clinico")


@dataclass
class TestAgency:
    __test__ = False  # a helper, not a test class

    id: str
    name: str = ""
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = "k1"

    def jwks(self) -> dict[str, Any]:
        jwk = dict(OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def assertion(self, audience: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": audience,
            "iat": issued,
            "exp": issued + 120,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


async def register(
    client: AsyncTestClient[Any],
    agency: TestAgency,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    purposes: Sequence[str] = ("verificacion_identidad", "tramite"),
    legal_bases: Sequence[LegalBasis] = (),
    scopes: Sequence[str] = (
        "procedures:write",
        "records:write",
        "consent:request",
        "data:request",
    ),
) -> None:
    services = services_of(client)

    async def work() -> None:
        async with services.sessions() as session:
            await AgencyRegistry().add(
                session,
                agency_id=agency.id,
                name=agency.name or agency.id.upper(),
                jwks=agency.jwks(),
                categories=categories,
                purposes=purposes,
                legal_bases=legal_bases,
                scopes=scopes,
                now=services.clock.now(),
            )
            await session.commit()

    in_app_loop(client, work)


async def token_for(
    client: AsyncTestClient[Any], agency: TestAgency, scope: str | None = None
) -> str:
    services = services_of(client)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": agency.assertion(
            services.settings.issuer + "/oauth/token", services.clock.now().timestamp()
        ),
    }
    if scope:
        form["scope"] = scope
    response = await client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def agency_headers(client: AsyncTestClient[Any], agency: TestAgency) -> dict[str, str]:
    return bearer(await token_for(client, agency))
