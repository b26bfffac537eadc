"""The one app factory: settings in, a fully wired Litestar app out.

Nothing touches the database, the key store or the network at import time; the lifespan opens
the engine, applies migrations and builds the services, and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eidentity.clock import Clock, SystemClock
from eidentity.controllers import AuthController, jwks
from eidentity.guards import STATE_KEY
from eidentity.oauth import OAuthController, oauth_metadata
from eidentity.sms import SmsSender
from pwa.routes import PRECOMPRESSED_OPT, prepare_assets, pwa_route_handlers
from wallet.agencies.routes import AgencyDirectory
from wallet.consents.routes import AgencyConsentRequests, AgencyDataRequests, MyConsents
from wallet.folder.agency_routes import AgencyInbox, AgencyProcedures, AgencyRecords
from wallet.folder.citizen_routes import MyFolder
from wallet.ledger_routes import MyActivity, PublicLedger, Regulator
from wallet.logs import configure_logging
from wallet.lowband import (
    IdempotencyConfig,
    LowbandCompressionConfig,
    RepresentationConfig,
    bearer_or_address,
)
from wallet.me import MeController
from wallet.problems import exception_handlers
from wallet.services import Services, background_work, build_services, dependencies, services_of
from wallet.settings import Settings
from wallet.unitofwork import SqliteWriter
from wallet.web import DEFAULT_BODY_TYPES, check_request, client_address, security_headers_hook

__all__ = ["Services", "build_services", "create_app"]

log = logging.getLogger("carpeta.app")


def _write_sessions(scope: Scope) -> async_sessionmaker[AsyncSession]:
    """Idempotency records are written with the unit-of-work sessions."""
    return services_of(scope).sessions


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
        stop = asyncio.Event()
        background = asyncio.create_task(background_work(services, stop))
        log.info("carpeta started", extra={"database": services.engine.dialect.name})
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await background
            if services.folder_reader.fast is not None:
                services.folder_reader.fast.close()
            if isinstance(services.transactions, SqliteWriter):
                services.transactions.close()
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
            AgencyConsentRequests,
            AgencyDataRequests,
            MyConsents,
            PublicLedger,
            MyActivity,
            Regulator,
            AgencyDirectory,
            *pwa_route_handlers(),
        ],
        on_startup=[prepare_assets],
        lifespan=[lifespan],
        dependencies={
            **dependencies(),
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
            # Quality 3 with a 64 KiB window: API bodies are small, and brotli's faster
            # encoders need a fraction of the memory (and CPU) of the defaults (5, 4 MiB) for
            # ~5-10 % more bytes. (PWA assets are precompressed at the highest quality.)
            brotli_quality=3,
            brotli_lgwin=16,
            exclude_opt_key=PRECOMPRESSED_OPT,  # PWA assets carry their own Content-Encoding
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
