"""Consent and data-release routes for agencies and citizens."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consent.requests import ConsentRequest, OverAsk
from consent.storage import ConsentRow
from eidentity.clock import Clock
from eidentity.guards import claims_of, client_of, requires_citizen, requires_client
from eidentity.routing import get, post
from eidentity.sms import SmsSender
from wallet.consents.schemas import (
    ConsentOut,
    ConsentRequestCreated,
    ConsentRequestIn,
    DataReleased,
    DataRequestIn,
    GrantIn,
    NoticeOut,
)
from wallet.consents.service import NOT_FOUND, ConsentService, consent_out, frequency_of
from wallet.lowband import Page
from wallet.models import Agency, DataCategory, Notice
from wallet.problems import ApiProblem
from wallet.release import Refused, ReleaseService
from wallet.sync import Limit, Since, owner_changes

RequestAnswer = Literal["approve", "deny"]
ConsentControl = Literal["pause", "resume", "revoke"]

REQUEST_SMS = (
    "Carpeta Ciudadana: una dependencia te pide permiso para consultar tus datos. "
    "Entra a tu Carpeta para aceptar o rechazar."
)


class AgencyConsentRequests(Controller):
    path = "/api/v1/agency/consent-requests"
    tags = ["Consentimiento"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_client("consent:request")],
        status_code=HTTP_201_CREATED,
        summary="Pedir consentimiento a una persona",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ConsentRequestIn],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
        sms_for_citizen: NamedDependency[SmsSender],
        clock: NamedDependency[Clock],
    ) -> Response[ConsentRequestCreated]:
        now = clock.now()
        agency_id = client_of(request)
        citizen_id = await consent_service.citizen_for(db_session, data.curp, now)
        outcome = await consent_service.request(
            db_session,
            agency_id,
            citizen_id,
            ConsentRequest(
                categories=tuple(data.categories),
                purpose=data.purpose,
                purpose_text=data.purpose_text,
                duration_days=data.duration_days,
                frequency=frequency_of(data.frequency),
            ),
            now,
        )
        phone = await _phone(db_session, consent_service, citizen_id)
        await db_session.commit()
        if isinstance(outcome, OverAsk):
            raise ApiProblem(
                outcome.status,
                outcome.slug,
                outcome.title,
                "Fuera de tu registro: " + ", ".join((*outcome.categories, *outcome.purposes)),
                categories=list(outcome.categories),
                purposes=list(outcome.purposes),
            )
        body = ConsentRequestCreated(
            id=outcome.artefact.consent_id, status=outcome.artefact.status.value
        )
        background = BackgroundTask(sms_for_citizen.send, phone, REQUEST_SMS) if phone else None
        return Response(body, status_code=HTTP_201_CREATED, background=background)

    @get(
        "/{consent_id:str}",
        guards=[requires_client("consent:request")],
        summary="Estado de una solicitud de consentimiento",
    )
    async def status(
        self,
        request: Request[Any, Any, Any],
        consent_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
    ) -> ConsentOut:
        row = await db_session.get(ConsentRow, consent_id)
        if row is None or row.consumer != client_of(request):
            raise NOT_FOUND
        return await consent_service.view(db_session, row)


class AgencyDataRequests(Controller):
    path = "/api/v1/agency/data-requests"
    tags = ["Consentimiento"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_client("data:request")],
        status_code=HTTP_200_OK,
        summary="Pedir datos de otra dependencia (con consentimiento o base legal)",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[DataRequestIn],
        release_service: NamedDependency[ReleaseService],
    ) -> DataReleased:
        # One dependency only: Litestar resolves several in a task group, which costs this
        # busiest of writes more than the rest of its HTTP handling.
        outcome = await release_service.request(
            client_of(request),
            data.curp,
            data.category,
            data.purpose,
            data.consent_id,
            release_service.clock.now(),
        )
        if isinstance(outcome, Refused):  # already in the ledger
            raise ApiProblem(
                403,
                "consent-required",
                "Se necesita el consentimiento de la persona.",
                outcome.text,
                reason=outcome.reason,
                request_id=outcome.request_id,
                consent_request="/api/v1/agency/consent-requests",
                ledger={"queue_id": outcome.queue_id},
            )
        return outcome


class MyConsents(Controller):
    path = "/api/v1/me"
    tags = ["Consentimiento"]
    guards = [requires_citizen()]
    security = [{"bearer": []}]

    @get("/consents", summary="Mis consentimientos (sincronización con since)")
    async def consents(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor_key: NamedDependency[bytes],
        consent_service: NamedDependency[ConsentService],
        since: Since = None,
        limit: Limit = None,
    ) -> Page[ConsentOut]:
        citizen_id = claims_of(request).subject
        changes = await owner_changes(
            db_session,
            ConsentRow,
            ConsentRow.principal,
            citizen_id,
            key=cursor_key,
            scope="me/consents",
            since=since,
            limit=limit,
            row_id=ConsentRow.consent_id,
        )
        names, categories = await _lookups(db_session)
        return changes.page(
            lambda row: consent_out(
                row,
                names.get(row.consumer, row.consumer),
                categories,
                consent_service.receipt_for(row),
            )
        )

    @get("/consent-requests", summary="Solicitudes de consentimiento pendientes")
    async def pending(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
    ) -> list[ConsentOut]:
        rows = await db_session.scalars(
            select(ConsentRow)
            .where(
                ConsentRow.principal == claims_of(request).subject, ConsentRow.status == "requested"
            )
            .order_by(ConsentRow.created_at.desc())
        )
        names, categories = await _lookups(db_session)
        return [
            consent_out(
                r, names.get(r.consumer, r.consumer), categories, consent_service.receipt_for(r)
            )
            for r in rows
        ]

    @post(
        "/consents",
        status_code=HTTP_201_CREATED,
        summary="Dar un consentimiento por iniciativa propia",
    )
    async def grant(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[GrantIn],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
        clock: NamedDependency[Clock],
    ) -> ConsentOut:
        claims = claims_of(request)
        stored = await consent_service.grant(
            db_session,
            claims.subject,
            data.consumer,
            data.categories,
            data.purpose,
            data.purpose_text,
            data.valid_until,
            frequency_of(data.frequency),
            claims.acr,
            clock.now(),
        )
        out = await consent_service.view(db_session, stored.row)
        await db_session.commit()
        return out

    async def _act(
        self,
        request: Request[Any, Any, Any],
        consent_id: str,
        action: str,
        db_session: AsyncSession,
        consent_service: ConsentService,
        clock: Clock,
    ) -> ConsentOut:
        claims = claims_of(request)
        stored = await consent_service.citizen_action(
            db_session, claims.subject, consent_id, action, claims.acr, clock.now()
        )
        out = await consent_service.view(db_session, stored.row)
        await db_session.commit()
        return out

    @post(
        "/consent-requests/{consent_id:str}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Aceptar (approve) o rechazar (deny) una solicitud",
    )
    async def answer(
        self,
        request: Request[Any, Any, Any],
        consent_id: FromPath[str],
        action: Annotated[RequestAnswer, PathParameter()],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
        clock: NamedDependency[Clock],
    ) -> ConsentOut:
        return await self._act(request, consent_id, action, db_session, consent_service, clock)

    @post(
        "/consents/{consent_id:str}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Pausar (pause), reanudar (resume) o revocar (revoke) un consentimiento",
    )
    async def control(
        self,
        request: Request[Any, Any, Any],
        consent_id: FromPath[str],
        action: Annotated[ConsentControl, PathParameter()],
        db_session: NamedDependency[AsyncSession],
        consent_service: NamedDependency[ConsentService],
        clock: NamedDependency[Clock],
    ) -> ConsentOut:
        return await self._act(request, consent_id, action, db_session, consent_service, clock)

    @get("/notices", summary="Avisos para mí (sincronización con since)")
    async def notices(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor_key: NamedDependency[bytes],
        since: Since = None,
        limit: Limit = None,
    ) -> Page[NoticeOut]:
        citizen_id = claims_of(request).subject
        changes = await owner_changes(
            db_session,
            Notice,
            Notice.citizen_id,
            citizen_id,
            key=cursor_key,
            scope="me/notices",
            since=since,
            limit=limit,
        )
        return changes.page(
            lambda n: NoticeOut(
                id=n.id,
                kind=n.kind,
                text=n.text,
                created_at=n.created_at,
                agency=n.agency_id,
                consent_id=n.consent_id,
            )
        )


async def _lookups(session: AsyncSession) -> tuple[dict[str, str], dict[str, tuple[str, bool]]]:
    names = {i: n for i, n in await session.execute(select(Agency.id, Agency.name))}
    rows = await session.execute(
        select(DataCategory.code, DataCategory.name, DataCategory.sensitive)
    )
    return names, {code: (name, sensitive) for code, name, sensitive in rows}


async def _phone(session: AsyncSession, service: ConsentService, citizen_id: str) -> str | None:
    citizen = await service.registry.by_id(session, citizen_id)
    return service.registry.phone_of(citizen) if citizen is not None else None
