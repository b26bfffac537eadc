"""HTTP routes for sign-in, sessions and the public JWKS.

The app composing this package provides the dependencies ``db_session`` (AsyncSession),
``signin`` (:class:`SignInService`), ``session_service`` (:class:`SessionService`), ``clock``
and ``client_address``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.clock import Clock
from eidentity.guards import STATE_KEY
from eidentity.routing import get, post
from eidentity.schemas import (
    CurpStart,
    CurpVerify,
    EfirmaChallengeOut,
    EfirmaVerify,
    OtpSent,
    RefreshIn,
    TokenResponse,
)
from eidentity.sessions import SessionService, TokenPair
from eidentity.signin import SignInService
from eidentity.tokens import AccessTokens

NO_STORE = {"Cache-Control": "no-store"}
OTP_MESSAGE = (
    "Si la CURP está registrada, enviamos un código de 6 dígitos por SMS al teléfono "
    "asociado. Vence en 5 minutos."
)


def _tokens(pair: TokenPair) -> Response[TokenResponse]:
    body = TokenResponse(
        access_token=pair.access_token,
        token_type="Bearer",
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        acr=pair.acr.value,
    )
    return Response(body, status_code=HTTP_200_OK, headers=NO_STORE)


class AuthController(Controller):
    path = "/auth"
    tags = ["Identidad"]

    @post("/curp/start", status_code=HTTP_200_OK, summary="Pedir un código por SMS")
    async def curp_start(
        self,
        data: JSONBody[CurpStart],
        db_session: NamedDependency[AsyncSession],
        signin: NamedDependency[SignInService],
        clock: NamedDependency[Clock],
        client_address: NamedDependency[str],
    ) -> Response[OtpSent]:
        """Same answer whether or not the CURP is enrolled; the SMS goes out afterwards."""
        now = clock.now()
        await signin.limit_address(db_session, client_address, now)
        started = await signin.start_otp(db_session, data.curp, now)
        body = OtpSent(
            otp_id=started.otp_id, expires_at=started.expires_at, channel="sms", message=OTP_MESSAGE
        )
        return Response(body, headers=NO_STORE, background=BackgroundTask(signin.deliver, started))

    @post("/curp/verify", status_code=HTTP_200_OK, summary="Entrar con el código recibido")
    async def curp_verify(
        self,
        data: JSONBody[CurpVerify],
        db_session: NamedDependency[AsyncSession],
        signin: NamedDependency[SignInService],
        clock: NamedDependency[Clock],
        client_address: NamedDependency[str],
    ) -> Response[TokenResponse]:
        now = clock.now()
        await signin.limit_address(db_session, client_address, now)
        pair = await signin.verify_otp(db_session, data.otp_id, data.code.strip(), now)
        return _tokens(pair)

    @post("/efirma/challenge", status_code=HTTP_200_OK, summary="Pedir un reto para firmar")
    async def efirma_challenge(
        self,
        db_session: NamedDependency[AsyncSession],
        signin: NamedDependency[SignInService],
        clock: NamedDependency[Clock],
        client_address: NamedDependency[str],
    ) -> Response[EfirmaChallengeOut]:
        now = clock.now()
        await signin.limit_address(db_session, client_address, now)
        issued = await signin.efirma_challenge(db_session, now)
        body = EfirmaChallengeOut(
            challenge_id=issued.challenge_id, to_sign=issued.to_sign, expires_at=issued.expires_at
        )
        return Response(body, headers=NO_STORE)

    @post("/efirma/verify", status_code=HTTP_200_OK, summary="Entrar con la firma del reto")
    async def efirma_verify(
        self,
        data: JSONBody[EfirmaVerify],
        db_session: NamedDependency[AsyncSession],
        signin: NamedDependency[SignInService],
        clock: NamedDependency[Clock],
        client_address: NamedDependency[str],
    ) -> Response[TokenResponse]:
        now = clock.now()
        await signin.limit_address(db_session, client_address, now)
        pair = await signin.efirma_verify(
            db_session, data.challenge_id, data.certificate, data.signature, now
        )
        return _tokens(pair)

    @post("/refresh", status_code=HTTP_200_OK, summary="Renovar la sesión")
    async def refresh(
        self,
        data: JSONBody[RefreshIn],
        db_session: NamedDependency[AsyncSession],
        session_service: NamedDependency[SessionService],
        clock: NamedDependency[Clock],
    ) -> Response[TokenResponse]:
        pair = await session_service.refresh(db_session, data.refresh_token, clock.now())
        await db_session.commit()
        return _tokens(pair)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="Cerrar la sesión")
    async def logout(
        self,
        data: JSONBody[RefreshIn],
        db_session: NamedDependency[AsyncSession],
        session_service: NamedDependency[SessionService],
        clock: NamedDependency[Clock],
    ) -> None:
        """Ends the whole sign-in (every refresh token rotated from it). Unknown tokens: 204."""
        await session_service.logout(db_session, data.refresh_token, clock.now())
        await db_session.commit()


@get("/.well-known/jwks.json", summary="Llaves públicas de firma", tags=["Identidad"])
async def jwks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    tokens: AccessTokens = request.app.state[STATE_KEY]
    return Response(tokens.ring.jwks(), headers={"Cache-Control": "public, max-age=300"})
