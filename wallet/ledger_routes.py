"""The transparency ledger over HTTP: public checkpoint and proofs, citizens' activity with
inclusion proofs their phone verifies, and the regulators' views (scope ``ledger:audit``).

Public routes expose only hashes, sizes and the signed checkpoint. Leaves hold pseudonyms,
never CURPs or record content, so a regulator can read them whole.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eidentity.guards import claims_of, requires_citizen, requires_client
from eidentity.routing import get
from ledger import proofs
from ledger.events import EVENT_TYPES
from ledger.note import format_vkey
from ledger.storage import queue
from wallet.ledger_bridge import LedgerWriter
from wallet.models import Agency
from wallet.problems import ApiProblem
from wallet.sync import MAX_INDEX

PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class LedgerIdentity:
    """Who signs the checkpoints: origin line, key name and the Ed25519 key."""

    origin: str
    key_name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    @property
    def vkey(self) -> str:
        return format_vkey(self.key_name, self.private_key.public_key())


def _proof_problem(error: proofs.ProofRequestError) -> ApiProblem:
    return ApiProblem(400, error.code, "La solicitud de prueba no es válida.", str(error))


class ActivityItem(msgspec.Struct, omit_defaults=True):
    """One event about me, with everything my phone needs to check it is in the log."""

    leaf_index: int
    leaf: str
    tree_size: int
    inclusion: list[str]
    event: dict[str, Any]
    consumer_name: str | None = None


class ActivityPage(msgspec.Struct):
    items: list[ActivityItem]
    checkpoint: str
    tree_size: int
    pending: int
    next_before: int | None


Int = Annotated[int, QueryParameter(ge=0, le=MAX_INDEX)]


class PublicLedger(Controller):
    path = "/"
    tags = ["Bitácora"]

    @get("/ledger/checkpoint", media_type=PLAIN, summary="Último punto de control firmado (C2SP)")
    async def checkpoint(self, db_session: NamedDependency[AsyncSession]) -> Response[str]:
        latest = await proofs.latest_checkpoint(db_session)
        if latest is None:
            raise ApiProblem(503, "ledger-not-ready", "La bitácora aún no tiene punto de control.")
        return Response(latest.note, media_type=PLAIN, headers={"Cache-Control": "no-cache"})

    @get("/.well-known/carpeta-ledger", summary="Llave pública de la bitácora")
    async def well_known(self, ledger_identity: NamedDependency[LedgerIdentity]) -> dict[str, str]:
        return {
            "origin": ledger_identity.origin,
            "key_name": ledger_identity.key_name,
            "public_key": ledger_identity.public_key_b64,
            "vkey": ledger_identity.vkey,
        }

    @get("/ledger/proofs/inclusion", summary="Prueba de inclusión (RFC 9162 §2.1.3)")
    async def inclusion(
        self,
        db_session: NamedDependency[AsyncSession],
        leaf_index: Int,
        tree_size: Int,
    ) -> dict[str, Any]:
        try:
            proof = await proofs.inclusion_proof(db_session, leaf_index, tree_size)
        except proofs.ProofRequestError as exc:
            raise _proof_problem(exc) from None
        return proof.to_json()

    @get("/ledger/proofs/consistency", summary="Prueba de consistencia (RFC 9162 §2.1.4)")
    async def consistency(
        self,
        db_session: NamedDependency[AsyncSession],
        first: Int,
        second: Int,
    ) -> dict[str, Any]:
        try:
            proof = await proofs.consistency_proof(db_session, first, second)
        except proofs.ProofRequestError as exc:
            raise _proof_problem(exc) from None
        return proof.to_json()


class MyActivity(Controller):
    path = "/api/v1/me/activity"
    tags = ["Bitácora"]
    guards = [requires_citizen()]
    security = [{"bearer": []}]

    @get("/", summary="Lo que ha pasado con mis datos, con pruebas verificables")
    async def activity(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        ledger_writer: NamedDependency[LedgerWriter],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        before: Annotated[int | None, QueryParameter(ge=0, le=MAX_INDEX)] = None,
        since: Annotated[
            int | None, QueryParameter(ge=0, le=MAX_INDEX, description="Índice de hoja ya visto")
        ] = None,
    ) -> ActivityPage:
        """Newest first. ``since`` (the highest leaf index already held) gives only new
        events; ``before`` pages back. Events not yet integrated are counted in ``pending``."""
        subject = ledger_writer.subject(claims_of(request).subject)
        latest = await proofs.latest_checkpoint(db_session)
        if latest is None:
            raise ApiProblem(503, "ledger-not-ready", "La bitácora aún no tiene punto de control.")
        page = await proofs.events_for_subject(
            db_session, subject, limit=limit, before=before, after=since
        )
        items = [record for record in page.items if record.leaf_index < latest.size]
        inclusion = (
            await proofs.inclusion_proofs(db_session, [r.leaf_index for r in items], latest.size)
            if items
            else []
        )
        names = {i: n for i, n in await db_session.execute(select(Agency.id, Agency.name))}
        pending = int(
            await db_session.scalar(
                select(func.count()).select_from(queue).where(queue.c.subject == subject)
            )
            or 0
        )
        return ActivityPage(
            items=[
                ActivityItem(
                    leaf_index=record.leaf_index,
                    leaf=base64.b64encode(record.leaf).decode(),
                    tree_size=latest.size,
                    inclusion=[base64.b64encode(h).decode() for h in proof.hashes],
                    event=json.loads(record.leaf),
                    consumer_name=names.get(record.consumer) if record.consumer else None,
                )
                for record, proof in zip(items, inclusion, strict=True)
            ],
            checkpoint=latest.note,
            tree_size=latest.size,
            pending=pending,
            next_before=page.next_before,
        )


class Regulator(Controller):
    path = "/api/v1/regulator"
    tags = ["Regulación"]
    guards = [requires_client("ledger:audit")]
    security = [{"bearer": []}]

    @get("/events", summary="Eventos de la bitácora con filtros")
    async def events(
        self,
        db_session: NamedDependency[AsyncSession],
        consumer: FromQuery[str | None] = None,
        type: FromQuery[str | None] = None,
        purpose: FromQuery[str | None] = None,
        legal_basis: FromQuery[str | None] = None,
        outcome: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        before: Annotated[int | None, QueryParameter(ge=0, le=MAX_INDEX)] = None,
    ) -> dict[str, Any]:
        if type is not None and type not in EVENT_TYPES:
            raise ApiProblem(
                400,
                "invalid-request",
                "Los datos enviados no son válidos.",
                f"Tipo de evento desconocido: {type}.",
            )
        filters = proofs.EventFilter(
            consumer=consumer,
            type=type,
            purpose=purpose,
            legal_basis=legal_basis,
            outcome=outcome,
            since=since,
            until=until,
        )
        page = await proofs.query_events(db_session, filters, limit=limit, before=before)
        return {"items": [r.to_json() for r in page.items], "next_before": page.next_before}

    @get("/stats", summary="Estadísticas de la bitácora")
    async def stats(
        self,
        db_session: NamedDependency[AsyncSession],
        consumer: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> dict[str, Any]:
        result = await proofs.stats(
            db_session, proofs.EventFilter(consumer=consumer, since=since, until=until)
        )
        return msgspec.to_builtins(result)  # type: ignore[no-any-return]

    @get(
        "/export",
        summary="Exportación completa en JSON Lines (streaming)",
        media_type="application/jsonl",
    )
    async def export(
        self,
        ledger_engine: NamedDependency[AsyncEngine],
        tree_size: Annotated[int | None, QueryParameter(ge=0, le=MAX_INDEX)] = None,
    ) -> Stream:
        async with ledger_engine.connect() as conn:
            latest = await proofs.latest_checkpoint(conn)
            size = await proofs.current_size(conn)
        target = tree_size if tree_size is not None else (latest.size if latest else 0)
        if target > size:
            raise ApiProblem(
                400,
                "tree-size-out-of-range",
                "La solicitud de prueba no es válida.",
                f"La bitácora tiene {size} hojas.",
            )

        async def lines() -> AsyncIterator[bytes]:
            async for leaf in proofs.export_leaves(ledger_engine, tree_size=target):
                yield leaf.json_line()

        return Stream(
            lines(),
            media_type="application/jsonl",
            headers={
                "Content-Disposition": f'attachment; filename="carpeta-ledger-{target}.jsonl"',
                "Carpeta-Tree-Size": str(target),
            },
        )
