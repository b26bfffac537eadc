"""The signed-in citizen's own profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.citizens import CitizenRegistry
from eidentity.guards import claims_of, requires_citizen
from eidentity.models import Citizen
from eidentity.routing import get
from eidentity.sms import mask_phone
from wallet.problems import ApiProblem


class Assurance(msgspec.Struct):
    level: str
    methods: list[str]


class Profile(msgspec.Struct):
    id: str
    curp: str
    name: str | None
    rfc: str | None
    phone: str | None
    assurance: Assurance
    enrolled_via: str
    enrolled_at: datetime


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["Carpeta"]
    guards = [requires_citizen()]
    security = [{"bearer": []}]

    @get("/", summary="Mi perfil y nivel de seguridad de la sesión")
    async def me(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        registry: NamedDependency[CitizenRegistry],
    ) -> Profile:
        claims = claims_of(request)
        citizen = (
            await db_session.execute(select(Citizen).where(Citizen.id == claims.subject))
        ).scalar_one_or_none()
        if citizen is None:
            raise ApiProblem(404, "not-found", "No encontramos lo que buscas.")
        phone = registry.phone_of(citizen)
        return Profile(
            id=citizen.id,
            curp=citizen.curp,
            name=citizen.name,
            rfc=citizen.rfc,
            phone=mask_phone(phone) if phone else None,
            assurance=Assurance(level=claims.acr.value, methods=list(claims.amr)),
            enrolled_via=citizen.enrolled_via,
            enrolled_at=citizen.created_at,
        )
