"""The service graph: built once per process in the lifespan (and by CLI commands).

Each field of :class:`Services` that handlers need is exposed as a named dependency by
:func:`dependencies`, so routes declare ``foo: NamedDependency[Foo]`` and never reach into
application state themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, fields
from typing import Any

from litestar import Request
from litestar.di import Provide
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eidentity.citizens import CitizenRegistry, PhoneCipher
from eidentity.clock import Clock, SystemClock
from eidentity.maintenance import purge_expired
from eidentity.oauth import TokenEndpoint
from eidentity.ratelimit import RateLimiter
from eidentity.sessions import SessionService
from eidentity.signin import SignInService
from eidentity.sms import SmsSender, sms_sender_from_sink
from eidentity.tokens import AccessTokens, KeyRing, SigningKey
from ledger.sequencer import Sequencer
from wallet import db
from wallet.agencies.registry import AgencyClientStore
from wallet.consents.expiry import expire_due_consents
from wallet.consents.service import ConsentService
from wallet.consents.webhooks import WebhookDispatcher
from wallet.efirma import build_verifier
from wallet.fastread import SqliteReads
from wallet.folder.publishing import Publisher
from wallet.folder.reading import FolderReader
from wallet.keystore import KeyStore
from wallet.ledger_bridge import LedgerWriter
from wallet.ledger_routes import LedgerIdentity
from wallet.lowband import purge_idempotency_records
from wallet.release import ReleaseService
from wallet.settings import Settings
from wallet.unitofwork import AlchemyTransactions, SqliteWriter, TxSource, write_session

log = logging.getLogger("carpeta.app")


@dataclass(slots=True)
class Services:
    """Everything shared by requests. Fields marked ``inject`` become named dependencies."""

    settings: Settings
    engine: AsyncEngine
    #: Units of work that write (on SQLite they begin IMMEDIATE); the safe default.
    sessions: async_sessionmaker[AsyncSession]
    #: Read-only requests (GET/HEAD): plain transactions that never wait for writers.
    read_sessions: async_sessionmaker[AsyncSession]
    keystore: KeyStore
    access_tokens: AccessTokens
    sequencer: Sequencer
    webhooks: WebhookDispatcher
    #: SQLite only: writers of this process queue here, in order, instead of racing for the
    #: database's write lock in SQLite's sleep-and-retry loop (which is unfair and slow).
    write_lock: asyncio.Lock | None
    #: Plain-SQL units of work (:mod:`wallet.unitofwork`): on the event loop for a SQLite
    #: file, through the write sessions otherwise.
    transactions: TxSource
    clock: Clock = field(metadata={"inject": Clock})
    cursor_key: bytes = field(metadata={"inject": bytes})
    registry: CitizenRegistry = field(metadata={"inject": CitizenRegistry})
    session_service: SessionService = field(metadata={"inject": SessionService})
    signin: SignInService = field(metadata={"inject": SignInService})
    token_endpoint: TokenEndpoint = field(metadata={"inject": TokenEndpoint})
    publisher: Publisher = field(metadata={"inject": Publisher})
    folder_reader: FolderReader = field(metadata={"inject": FolderReader})
    ledger_writer: LedgerWriter = field(metadata={"inject": LedgerWriter})
    ledger_identity: LedgerIdentity = field(metadata={"inject": LedgerIdentity})
    ledger_engine: AsyncEngine = field(metadata={"inject": AsyncEngine})
    consent_service: ConsentService = field(metadata={"inject": ConsentService})
    release_service: ReleaseService = field(metadata={"inject": ReleaseService})
    sms_for_citizen: SmsSender = field(metadata={"inject": SmsSender})


def build_access_tokens(settings: Settings, keystore: KeyStore, clock: Clock) -> AccessTokens:
    ring = KeyRing(
        [SigningKey.from_private_key(k.private_key, k.created_at) for k in keystore.signing_keys()]
    )
    return AccessTokens(
        ring,
        settings.issuer,
        settings.issuer,
        settings.access_token_ttl,
        now=lambda: clock.now().timestamp(),
    )


async def build_services(
    settings: Settings, clock: Clock | None = None, sms: SmsSender | None = None
) -> Services:
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keystore = KeyStore(settings.resolved_keys_dir)
    url = settings.resolved_database_url
    await asyncio.to_thread(db.upgrade, url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine, write=True)
    access_tokens = build_access_tokens(settings, keystore, clock)
    sms = sms or sms_sender_from_sink(settings.sms_sink)
    registry = CitizenRegistry(PhoneCipher(keystore.secret("phone-encryption")))
    session_service = SessionService(access_tokens, settings.refresh_token_ttl)
    ledger_writer = LedgerWriter(keystore.secret("pseudonym"))
    origin = settings.resolved_ledger_origin
    ledger_identity = LedgerIdentity(origin, origin, keystore.ed25519("ledger"))
    consent_service = ConsentService(access_tokens.ring, ledger_writer, registry)
    write_lock = asyncio.Lock() if db.is_sqlite(url) else None
    transactions: TxSource = (
        SqliteWriter(url, write_lock)
        if write_lock is not None and db.is_sqlite_file(url)
        else AlchemyTransactions(sessions, write_lock)
    )
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=db.session_factory(engine),
        keystore=keystore,
        access_tokens=access_tokens,
        sequencer=Sequencer(
            engine,
            ledger_identity.private_key,
            origin,
            ledger_identity.key_name,
            writer_lock=write_lock,
        ),
        write_lock=write_lock,
        transactions=transactions,
        webhooks=WebhookDispatcher(sessions, access_tokens.ring, clock, lock=write_lock),
        clock=clock,
        cursor_key=keystore.secret("sync-cursor"),
        registry=registry,
        session_service=session_service,
        signin=SignInService(
            registry=registry,
            sessions=session_service,
            limiter=RateLimiter(keystore.secret("rate-limit")),
            otp_secret=keystore.secret("otp"),
            sms=sms,
            otp_per_curp_per_hour=settings.otp_per_curp_per_hour,
            requests_per_address_per_minute=settings.requests_per_address_per_minute,
            origin=settings.issuer,
            verifier=build_verifier(settings),
        ),
        token_endpoint=TokenEndpoint(
            AgencyClientStore(sessions),
            access_tokens,
            token_url=settings.issuer + "/oauth/token",
            issuer=settings.issuer,
            clock=clock,
        ),
        publisher=Publisher(registry, ledger_writer),
        folder_reader=FolderReader(
            ledger_writer, fast=SqliteReads(url) if db.is_sqlite(url) else None
        ),
        ledger_writer=ledger_writer,
        ledger_identity=ledger_identity,
        ledger_engine=engine,
        consent_service=consent_service,
        release_service=ReleaseService(
            consent_service,
            access_tokens.ring,
            transactions,
            lambda: write_session(sessions, write_lock),
            clock,
        ),
        sms_for_citizen=sms,
    )


def services_of(scope_or_request: Request[Any, Any, Any] | Scope) -> Services:
    app = scope_or_request["app"] if isinstance(scope_or_request, dict) else scope_or_request.app
    services: Services = app.state["services"]
    return services


async def provide_db_session(
    request: Request[Any, Any, Any],
) -> AsyncGenerator[AsyncSession, None]:
    services = services_of(request)
    if request.method in {"GET", "HEAD"}:
        async with services.read_sessions() as session:
            yield session
        return
    async with write_session(services.sessions, services.write_lock) as session:
        yield session


def _provider(name: str, kind: type[Any]) -> Provide:
    def provide(request: Request[Any, Any, Any]) -> Any:
        return getattr(services_of(request), name)

    provide.__annotations__ = {"request": Request, "return": kind}
    provide.__name__ = f"provide_{name}"
    return Provide(provide, sync_to_thread=False)


def dependencies() -> dict[str, Provide]:
    provided = {"db_session": Provide(provide_db_session)}
    for f in fields(Services):
        if "inject" in f.metadata:
            provided[f.name] = _provider(f.name, f.metadata["inject"])
    return provided


async def background_work(services: Services, stop: asyncio.Event) -> None:
    """The process's background duties: ledger sequencer, webhooks, expiry, housekeeping."""
    await services.sequencer.prepare()
    tasks = [
        asyncio.create_task(services.sequencer.run(stop), name="ledger-sequencer"),
        asyncio.create_task(services.webhooks.run(stop), name="consent-webhooks"),
        asyncio.create_task(
            _every(stop, 30.0, lambda: expire_due_consents(services)), name="expiry"
        ),
        asyncio.create_task(
            _every(stop, 600.0, lambda: _housekeeping(services)), name="housekeeping"
        ),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            if task.get_name() in {"expiry", "housekeeping"}:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _every(stop: asyncio.Event, seconds: float, work: Any) -> None:
    while not stop.is_set():
        try:
            await work()
        except Exception as exc:  # a background round must never take the service down
            log.warning("background task failed", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _housekeeping(services: Services) -> None:
    """Purge expired sign-in state and idempotency records."""
    async with write_session(services.sessions, services.write_lock) as session:
        await purge_expired(session, services.clock.now())
    async with (
        write_session(services.sessions, services.write_lock) as session,
        session.begin(),
    ):
        await purge_idempotency_records(session, services.clock.now())
