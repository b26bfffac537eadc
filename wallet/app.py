"""The one app factory: settings in, a fully wired Litestar app out.

Nothing touches the database, the key store or the network at import time; the lifespan opens
the engine, applies migrations and builds the services, and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eidentity.citizens import CitizenRegistry, PhoneCipher
from eidentity.clock import Clock, SystemClock
from eidentity.controllers import AuthController, jwks
from eidentity.guards import STATE_KEY
from eidentity.maintenance import purge_expired
from eidentity.oauth import OAuthController, TokenEndpoint, oauth_metadata
from eidentity.ratelimit import RateLimiter
from eidentity.sessions import SessionService
from eidentity.signin import SignInService
from eidentity.sms import SmsSender, sms_sender_from_sink
from eidentity.tokens import AccessTokens, KeyRing, SigningKey
from wallet import db
from wallet.agencies.registry import AgencyClientStore
from wallet.efirma import build_verifier
from wallet.folder.agency_routes import AgencyInbox, AgencyProcedures, AgencyRecords
from wallet.folder.citizen_routes import MyFolder
from wallet.folder.publishing import Publisher
from wallet.folder.reading import FolderReader
from wallet.keystore import KeyStore
from wallet.logs import configure_logging
from wallet.lowband import (
    IdempotencyConfig,
    LowbandCompressionConfig,
    RepresentationConfig,
    bearer_or_address,
    purge_idempotency_records,
)
from wallet.me import MeController
from wallet.problems import exception_handlers
from wallet.settings import Settings
from wallet.web import DEFAULT_BODY_TYPES, check_request, client_address, security_headers_hook

log = logging.getLogger("carpeta.app")


@dataclass(slots=True)
class Services:
    """Everything built in the lifespan and shared by requests."""

    settings: Settings
    engine: AsyncEngine
    #: Units of work that write (on SQLite they begin IMMEDIATE); the safe default.
    sessions: async_sessionmaker[AsyncSession]
    #: Read-only requests (GET/HEAD): plain transactions that never wait for writers.
    read_sessions: async_sessionmaker[AsyncSession]
    folder_reader: FolderReader
    cursor_key: bytes
    keystore: KeyStore
    access_tokens: AccessTokens
    registry: CitizenRegistry
    session_service: SessionService
    signin: SignInService
    token_endpoint: TokenEndpoint
    publisher: Publisher
    clock: Clock


def build_access_tokens(
    settings: Settings, keystore: KeyStore, clock: Clock | None = None
) -> AccessTokens:
    ring = KeyRing(
        [SigningKey.from_private_key(k.private_key, k.created_at) for k in keystore.signing_keys()]
    )
    clock = clock or SystemClock()
    return AccessTokens(
        ring,
        settings.issuer,
        settings.issuer,
        settings.access_token_ttl,
        now=lambda: clock.now().timestamp(),
    )


async def build_services(
    settings: Settings, clock: Clock, sms: SmsSender | None = None
) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keystore = KeyStore(settings.resolved_keys_dir)
    url = settings.resolved_database_url
    await asyncio.to_thread(db.upgrade, url)
    engine = db.create_engine(url)
    access_tokens = build_access_tokens(settings, keystore, clock)
    registry = CitizenRegistry(PhoneCipher(keystore.secret("phone-encryption")))
    session_service = SessionService(access_tokens, settings.refresh_token_ttl)
    signin = SignInService(
        registry=registry,
        sessions=session_service,
        limiter=RateLimiter(keystore.secret("rate-limit")),
        otp_secret=keystore.secret("otp"),
        sms=sms or sms_sender_from_sink(settings.sms_sink),
        otp_per_curp_per_hour=settings.otp_per_curp_per_hour,
        requests_per_address_per_minute=settings.requests_per_address_per_minute,
        origin=settings.issuer,
        verifier=build_verifier(settings),
    )
    sessions = db.session_factory(engine, write=True)
    token_endpoint = TokenEndpoint(
        AgencyClientStore(sessions),
        access_tokens,
        token_url=settings.issuer + "/oauth/token",
        issuer=settings.issuer,
        clock=clock,
    )
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=db.session_factory(engine),
        folder_reader=FolderReader(),
        cursor_key=keystore.secret("sync-cursor"),
        keystore=keystore,
        access_tokens=access_tokens,
        registry=registry,
        session_service=session_service,
        signin=signin,
        token_endpoint=token_endpoint,
        publisher=Publisher(registry),
        clock=clock,
    )


async def _housekeeping(services: Services, every: float = 600.0) -> None:
    """Purge expired sign-in state now and then; a failure is logged, never fatal."""
    while True:
        await asyncio.sleep(every)
        try:
            async with services.sessions() as session:
                await purge_expired(session, services.clock.now())
            async with services.sessions() as session, session.begin():
                await purge_idempotency_records(session, services.clock.now())
        except Exception as exc:  # keep serving whatever happens here
            log.warning("housekeeping failed", extra={"error": type(exc).__name__})


def _write_sessions(scope: Scope) -> async_sessionmaker[AsyncSession]:
    """Idempotency records are written with the unit-of-work sessions."""
    services: Services = scope["app"].state["services"]
    return services.sessions


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state["services"]
    return services


async def provide_db_session(
    request: Request[Any, Any, Any],
) -> AsyncGenerator[AsyncSession, None]:
    services = _services(request)
    factory = services.read_sessions if request.method in {"GET", "HEAD"} else services.sessions
    async with factory() as session:
        yield session


def provide_signin(request: Request[Any, Any, Any]) -> SignInService:
    return _services(request).signin


def provide_session_service(request: Request[Any, Any, Any]) -> SessionService:
    return _services(request).session_service


def provide_registry(request: Request[Any, Any, Any]) -> CitizenRegistry:
    return _services(request).registry


def provide_token_endpoint(request: Request[Any, Any, Any]) -> TokenEndpoint:
    return _services(request).token_endpoint


def provide_publisher(request: Request[Any, Any, Any]) -> Publisher:
    return _services(request).publisher


def provide_folder_reader(request: Request[Any, Any, Any]) -> FolderReader:
    return _services(request).folder_reader


def provide_cursor_key(request: Request[Any, Any, Any]) -> bytes:
    return _services(request).cursor_key


def provide_clock(request: Request[Any, Any, Any]) -> Clock:
    return _services(request).clock


@get("/healthz", summary="Salud del servicio", tags=["Operación"], opt={"skip_log": True})
async def healthz(request: Request[Any, Any, Any]) -> dict[str, str]:
    """200 once the lifespan finished: migrations applied, keys loaded, database reachable."""
    return {"status": "ok"}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    sms: SmsSender | None = None,
) -> Litestar:
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    configure_logging(settings.log_level, settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await build_services(settings, clock, sms)
        app.state["services"] = services
        app.state[STATE_KEY] = services.access_tokens
        log.info("carpeta started", extra={"database": services.engine.dialect.name})
        housekeeping = asyncio.create_task(_housekeeping(services))
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            await services.engine.dispose()

    def provide_address(request: Request[Any, Any, Any]) -> str:
        return client_address(request, settings)

    return Litestar(
        route_handlers=[
            healthz,
            jwks,
            AuthController,
            MeController,
            OAuthController,
            oauth_metadata,
            AgencyProcedures,
            AgencyRecords,
            AgencyInbox,
            MyFolder,
        ],
        lifespan=[lifespan],
        dependencies={
            "db_session": Provide(provide_db_session),
            "signin": Provide(provide_signin, sync_to_thread=False),
            "session_service": Provide(provide_session_service, sync_to_thread=False),
            "registry": Provide(provide_registry, sync_to_thread=False),
            "clock": Provide(provide_clock, sync_to_thread=False),
            "token_endpoint": Provide(provide_token_endpoint, sync_to_thread=False),
            "publisher": Provide(provide_publisher, sync_to_thread=False),
            "folder_reader": Provide(provide_folder_reader, sync_to_thread=False),
            "cursor_key": Provide(provide_cursor_key, sync_to_thread=False),
            "client_address": Provide(provide_address, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        before_request=check_request,
        before_send=[security_headers_hook(settings)],
        request_max_body_size=settings.max_body_bytes,
        # Compression wraps idempotency, which wraps ETag/304 and MessagePack negotiation:
        # the only way into that order is the compression config's middleware.
        compression_config=LowbandCompressionConfig(
            backend="brotli",
            brotli_gzip_fallback=True,
            minimum_size=256,
            representation=RepresentationConfig(default_body_types=DEFAULT_BODY_TYPES),
            idempotency=IdempotencyConfig(
                sessions=_write_sessions,
                principal=bearer_or_address(lambda request: client_address(request, settings)),
                now=clock.now,
            ),
        ),
        openapi_config=OpenAPIConfig(
            title="Carpeta Ciudadana MX",
            version="0.1.0",
            description="Carpeta Ciudadana: identidad, carpeta, consentimiento y bitácora.",
            render_plugins=[JsonRenderPlugin()],
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        logging_config=None,  # ours (configure_logging) redacts; Litestar's would replace it
        debug=False,
    )
