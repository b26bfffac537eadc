"""The citizen's folder over HTTP: summary, procedures, records, messages, export.

Collections answer with the delta-sync envelope ``{items, deleted, next_cursor, has_more}``:
without ``since`` it is a full sync (replace the local copy), with ``since`` only what changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.clock import Clock
from eidentity.guards import claims_of, requires_citizen
from eidentity.models import Citizen
from eidentity.routing import get, post
from wallet.folder.agency_routes import write_message
from wallet.folder.reading import (
    NOT_FOUND,
    FolderReader,
    message_out,
    procedure_item,
    record_detail,
    record_item,
)
from wallet.folder.schemas import (
    MessageIn,
    MessageOut,
    ProcedureDetail,
    ProcedureItem,
    RecordDetail,
    RecordItem,
    Summary,
)
from wallet.lowband import Page
from wallet.models import Agency, DataCategory, Message, Procedure, Record
from wallet.services import services_of
from wallet.sync import MAX_INDEX, Limit, Since, owner_changes


def _citizen(request: Request[Any, Any, Any]) -> str:
    return claims_of(request).subject


class MyFolder(Controller):
    path = "/api/v1/me"
    tags = ["Carpeta"]
    guards = [requires_citizen()]
    security = [{"bearer": []}]

    @get("/summary", summary="Resumen para el tablero")
    async def summary(
        self,
        request: Request[Any, Any, Any],
        folder_reader: NamedDependency[FolderReader],
        seen: Annotated[
            int | None,
            QueryParameter(
                ge=0, le=MAX_INDEX, description="Índice de hoja más alto ya visto en mi actividad"
            ),
        ] = None,
    ) -> Summary:
        """No session dependency: on SQLite the counts come from the fast read path."""
        return await folder_reader.summary_for(
            services_of(request).read_sessions, _citizen(request), seen
        )

    @get("/procedures", summary="Mis trámites (sincronización con since)")
    async def procedures(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor_key: NamedDependency[bytes],
        since: Since = None,
        limit: Limit = None,
    ) -> Page[ProcedureItem]:
        citizen_id = _citizen(request)
        names = await _agency_names(db_session)
        changes = await owner_changes(
            db_session,
            Procedure,
            Procedure.citizen_id,
            citizen_id,
            key=cursor_key,
            scope="me/procedures",
            since=since,
            limit=limit,
        )
        return changes.page(
            lambda row: procedure_item(row, names.get(row.agency_id, row.agency_id))
        )

    @get("/procedures/{procedure_id:str}", summary="Un trámite con sus mensajes")
    async def procedure(
        self,
        request: Request[Any, Any, Any],
        procedure_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        folder_reader: NamedDependency[FolderReader],
    ) -> ProcedureDetail:
        return await folder_reader.procedure(db_session, _citizen(request), procedure_id)

    @post(
        "/procedures/{procedure_id:str}/messages",
        status_code=HTTP_201_CREATED,
        summary="Escribir a la dependencia responsable",
    )
    async def write(
        self,
        request: Request[Any, Any, Any],
        procedure_id: FromPath[str],
        data: JSONBody[MessageIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> MessageOut:
        citizen_id = _citizen(request)
        procedure = (
            await db_session.execute(
                select(Procedure).where(
                    Procedure.id == procedure_id,
                    Procedure.citizen_id == citizen_id,
                    Procedure.deleted_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if procedure is None:
            raise NOT_FOUND
        message = await write_message(db_session, procedure, "citizen", data.body, clock)
        await db_session.commit()
        return message_out(message)

    @get("/records", summary="Lo que las dependencias tienen de mí (sin el contenido)")
    async def records(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        cursor_key: NamedDependency[bytes],
        since: Since = None,
        limit: Limit = None,
    ) -> Page[RecordItem]:
        citizen_id = _citizen(request)
        names = await _agency_names(db_session)
        categories = await _category_names(db_session)
        changes = await owner_changes(
            db_session,
            Record,
            Record.citizen_id,
            citizen_id,
            key=cursor_key,
            scope="me/records",
            since=since,
            limit=limit,
        )
        return changes.page(
            lambda row: record_item(
                row,
                names.get(row.agency_id, row.agency_id),
                categories.get(row.category, row.category),
            )
        )

    @get("/records/{record_id:str}", summary="Un registro con su contenido")
    async def record(
        self,
        request: Request[Any, Any, Any],
        record_id: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        folder_reader: NamedDependency[FolderReader],
    ) -> RecordDetail:
        return await folder_reader.record(db_session, _citizen(request), record_id)

    @get("/export", summary="Todo lo mío, legible por máquina (derecho de acceso ARCO)")
    async def export(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Response[bytes]:
        citizen_id = _citizen(request)
        document = await export_document(db_session, citizen_id, clock.now())
        stamp = clock.now().strftime("%Y%m%d")
        return Response(
            msgspec.json.encode(document),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="carpeta-{stamp}.json"',
                "Cache-Control": "private, no-store",
            },
        )


async def _agency_names(session: AsyncSession) -> dict[str, str]:
    return {row[0]: row[1] for row in await session.execute(select(Agency.id, Agency.name))}


async def _category_names(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(DataCategory.code, DataCategory.name))
    return {row[0]: row[1] for row in rows}


async def export_document(session: AsyncSession, citizen_id: str, now: datetime) -> dict[str, Any]:
    """Everything the wallet holds about the citizen, for ARCO access and portability."""

    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise NOT_FOUND
    names = await _agency_names(session)
    categories = await _category_names(session)
    procedures = list(
        await session.scalars(
            select(Procedure)
            .where(Procedure.citizen_id == citizen_id, Procedure.deleted_at.is_(None))
            .order_by(Procedure.created_at)
        )
    )
    messages = list(
        await session.scalars(
            select(Message).where(Message.citizen_id == citizen_id).order_by(Message.citizen_seq)
        )
    )
    by_procedure: dict[str, list[MessageOut]] = {}
    for message in messages:
        by_procedure.setdefault(message.procedure_id, []).append(message_out(message))
    records = list(
        await session.scalars(
            select(Record)
            .where(Record.citizen_id == citizen_id, Record.deleted_at.is_(None))
            .order_by(Record.created_at)
        )
    )
    return {
        "format": "carpeta-ciudadana-export/1",
        "generated_at": now,
        "person": {
            "id": citizen.id,
            "curp": citizen.curp,
            "name": citizen.name,
            "rfc": citizen.rfc,
            "enrolled_via": citizen.enrolled_via,
            "enrolled_at": citizen.created_at,
        },
        "procedures": [
            {
                **msgspec.structs.asdict(procedure_item(p, names.get(p.agency_id, p.agency_id))),
                "messages": by_procedure.get(p.id, []),
            }
            for p in procedures
        ],
        "records": [
            record_detail(
                r, names.get(r.agency_id, r.agency_id), categories.get(r.category, r.category)
            )
            for r in records
        ],
    }
