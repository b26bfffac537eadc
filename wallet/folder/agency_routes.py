"""Agency routes: publish and withdraw procedures and records, read and answer messages.

An agency only ever sees what it published: every lookup is by (its client id, its external
id), so another agency's objects are not found (404), exactly like unknown ones.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.clock import Clock
from eidentity.guards import client_of, requires_client
from eidentity.routing import delete, get, post, put
from wallet.folder.publishing import Publisher, Upserted
from wallet.folder.reading import NOT_FOUND
from wallet.folder.schemas import (
    AgencyMessage,
    MessageIn,
    ProcedureIn,
    Published,
    RecordIn,
)
from wallet.lowband import Page
from wallet.models import Message, Procedure, Record
from wallet.problems import ApiProblem
from wallet.sync import Limit, Since, agency_owner, citizen_owner, next_change_seq, owner_changes


def _published(external_id: str, result: Upserted, with_digest: bool) -> Response[Published]:
    body = Published(
        id=result.id,
        external_id=external_id,
        created=result.created,
        changed=result.changed,
        updated_at=result.updated_at,
        digest=result.digest if with_digest else None,
        ledger={"queue_id": result.queue_id} if result.queue_id else None,
    )
    return Response(body, status_code=HTTP_201_CREATED if result.created else HTTP_200_OK)


class AgencyProcedures(Controller):
    path = "/api/v1/agency/procedures"
    tags = ["Dependencias"]
    security = [{"bearer": []}]

    @put(
        "/{external_id:str}",
        guards=[requires_client("procedures:write")],
        summary="Publicar un trámite",
    )
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        data: JSONBody[ProcedureIn],
        db_session: NamedDependency[AsyncSession],
        publisher: NamedDependency[Publisher],
        clock: NamedDependency[Clock],
    ) -> Response[Published]:
        result = await publisher.upsert_procedure(
            db_session, client_of(request), _external(external_id), data, clock.now()
        )
        await db_session.commit()
        return _published(external_id, result, with_digest=False)

    @delete(
        "/{external_id:str}",
        guards=[requires_client("procedures:write")],
        status_code=HTTP_204_NO_CONTENT,
        summary="Retirar un trámite",
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        publisher: NamedDependency[Publisher],
        clock: NamedDependency[Clock],
    ) -> None:
        done = await publisher.withdraw(
            db_session, Procedure, client_of(request), external_id, clock.now()
        )
        if done is None:
            raise NOT_FOUND
        await db_session.commit()

    @get(
        "/{external_id:str}/messages",
        guards=[requires_client("procedures:write")],
        summary="Mensajes de la persona sobre un trámite",
    )
    async def messages(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
    ) -> list[AgencyMessage]:
        procedure = await _own_procedure(db_session, client_of(request), external_id)
        rows = await db_session.scalars(
            select(Message).where(Message.procedure_id == procedure.id).order_by(Message.agency_seq)
        )
        return [_agency_message(m, external_id) for m in rows]

    @post(
        "/{external_id:str}/messages",
        guards=[requires_client("procedures:write")],
        status_code=HTTP_201_CREATED,
        summary="Responder a la persona en un trámite",
    )
    async def answer(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        data: JSONBody[MessageIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> AgencyMessage:
        agency_id = client_of(request)
        procedure = await _own_procedure(db_session, agency_id, external_id)
        message = await write_message(db_session, procedure, "agency", data.body, clock)
        await db_session.commit()
        return _agency_message(message, external_id)


class AgencyInbox(Controller):
    path = "/api/v1/agency/messages"
    tags = ["Dependencias"]
    security = [{"bearer": []}]

    @get("/", guards=[requires_client("procedures:write")], summary="Mensajes nuevos (since)")
    async def inbox(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor_key: NamedDependency[bytes],
        since: Since = None,
        limit: Limit = None,
    ) -> Page[AgencyMessage]:
        """Every message on the agency's procedures, oldest first, as a delta-sync feed."""
        agency_id = client_of(request)
        changes = await owner_changes(
            db_session,
            Message,
            Message.agency_id,
            agency_id,
            key=cursor_key,
            scope="agency/messages",
            since=since,
            limit=limit,
            seq=Message.agency_seq,
        )
        ids = {m.procedure_id for m in changes.items}
        external: dict[str, str] = {}
        if ids:
            rows = await db_session.execute(
                select(Procedure.id, Procedure.external_id).where(Procedure.id.in_(ids))
            )
            external = {procedure_id: external_id for procedure_id, external_id in rows}
        return changes.page(lambda m: _agency_message(m, external.get(m.procedure_id, "")))


class AgencyRecords(Controller):
    path = "/api/v1/agency/records"
    tags = ["Dependencias"]
    security = [{"bearer": []}]

    @put(
        "/{external_id:str}",
        guards=[requires_client("records:write")],
        summary="Publicar un registro",
    )
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        data: JSONBody[RecordIn],
        db_session: NamedDependency[AsyncSession],
        publisher: NamedDependency[Publisher],
        clock: NamedDependency[Clock],
    ) -> Response[Published]:
        result = await publisher.upsert_record(
            db_session, client_of(request), _external(external_id), data, clock.now()
        )
        await db_session.commit()
        return _published(external_id, result, with_digest=True)

    @delete(
        "/{external_id:str}",
        guards=[requires_client("records:write")],
        status_code=HTTP_204_NO_CONTENT,
        summary="Retirar un registro",
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        publisher: NamedDependency[Publisher],
        clock: NamedDependency[Clock],
    ) -> None:
        done = await publisher.withdraw(
            db_session, Record, client_of(request), external_id, clock.now()
        )
        if done is None:
            raise NOT_FOUND
        await db_session.commit()


def _external(external_id: str) -> str:
    if not 1 <= len(external_id) <= 128 or not all(c.isalnum() or c in "._:-" for c in external_id):
        raise ApiProblem(
            400,
            "invalid-request",
            "Los datos enviados no son válidos.",
            "El identificador externo usa letras, números y . _ : - (máximo 128).",
        )
    return external_id


async def _own_procedure(session: AsyncSession, agency_id: str, external_id: str) -> Procedure:
    row = (
        await session.execute(
            select(Procedure).where(
                Procedure.agency_id == agency_id,
                Procedure.external_id == external_id,
                Procedure.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NOT_FOUND
    return row


async def write_message(
    session: AsyncSession, procedure: Procedure, author: str, body: str, clock: Clock
) -> Message:
    """A message shows up in both sides' feeds, so it takes a sequence number in each."""
    message = Message(
        id=str(uuid.uuid4()),
        procedure_id=procedure.id,
        agency_id=procedure.agency_id,
        citizen_id=procedure.citizen_id,
        author=author,
        body=body.strip(),
        created_at=clock.now(),
        agency_seq=await next_change_seq(session, agency_owner(procedure.agency_id)),
        citizen_seq=await next_change_seq(session, citizen_owner(procedure.citizen_id)),
    )
    session.add(message)
    await session.flush()
    return message


def _agency_message(row: Message, external_id: str) -> AgencyMessage:
    return AgencyMessage(
        id=row.id,
        external_id=external_id,
        author=row.author,  # type: ignore[arg-type]
        body=row.body,
        created_at=row.created_at,
    )
