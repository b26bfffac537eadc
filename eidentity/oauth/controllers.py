"""HTTP routes of the agency side of identity: the token endpoint and its RFC 8414 metadata.

The app composing this package provides the dependencies ``db_session`` (AsyncSession) and
``token_endpoint`` (:class:`~eidentity.oauth.token_endpoint.TokenEndpoint`, which holds the
clock). The token route declares ``opt["accept"]`` so the app's media-type check lets forms in.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.oauth.errors import InvalidRequest
from eidentity.oauth.forms import FORM_MEDIA_TYPE, parse_token_form
from eidentity.oauth.token_endpoint import TokenEndpoint
from eidentity.routing import get, post
from eidentity.schemas import TokenResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthController(Controller):
    path = "/oauth"
    tags = ["Agencias"]

    @post(
        "/token",
        status_code=HTTP_200_OK,
        summary="Token de acceso para una dependencia (client_credentials + private_key_jwt)",
        opt={"accept": frozenset({FORM_MEDIA_TYPE})},
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        token_endpoint: NamedDependency[TokenEndpoint],
    ) -> Response[TokenResponse]:
        """Form fields: ``grant_type=client_credentials``, ``client_assertion_type``
        (``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``), ``client_assertion``
        (a JWT signed with a registered key), optional ``scope`` and ``client_id``."""
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != FORM_MEDIA_TYPE:
            raise InvalidRequest(f"Envía la solicitud como {FORM_MEDIA_TYPE}.")
        form = parse_token_form(await request.body())
        grant = await token_endpoint.handle(db_session, form)
        await db_session.commit()
        body = TokenResponse(
            access_token=grant.access_token,
            token_type=grant.token_type,
            expires_in=grant.expires_in,
            scope=grant.scope,
        )
        return Response(body, headers=NO_STORE)


@get(
    "/.well-known/oauth-authorization-server",
    summary="Metadatos del servidor de autorización (RFC 8414)",
    tags=["Agencias"],
)
async def oauth_metadata(
    token_endpoint: NamedDependency[TokenEndpoint],
) -> Response[dict[str, Any]]:
    return Response(token_endpoint.metadata(), headers={"Cache-Control": "public, max-age=300"})
