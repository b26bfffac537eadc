"""Public directory of agencies: who may ask for what, and under which statutes.

Transparency by default: a citizen (or anyone) can see every registered agency, the data
categories and purposes it may request, and the legal bases that let it access data without
consent — the same registration that bounds every consent request.
"""

from __future__ import annotations

import msgspec
from litestar import Controller
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.routing import get
from wallet.agencies.registry import AgencyRegistry


class LegalBasisOut(msgspec.Struct):
    category: str
    purpose: str
    reference: str


class AgencyOut(msgspec.Struct):
    id: str
    name: str
    categories: list[str]
    purposes: list[str]
    legal_bases: list[LegalBasisOut]
    requests_data: bool


class CategoryOut(msgspec.Struct):
    code: str
    name: str
    sensitive: bool


class Directory(msgspec.Struct):
    agencies: list[AgencyOut]
    categories: list[CategoryOut]


class AgencyDirectory(Controller):
    path = "/api/v1/directory"
    tags = ["Carpeta"]

    @get("/", summary="Dependencias registradas y lo que pueden pedir")
    async def directory(self, db_session: NamedDependency[AsyncSession]) -> Directory:
        registry = AgencyRegistry()
        views = await registry.list(db_session)
        categories = await registry.categories(db_session)
        return Directory(
            agencies=[
                AgencyOut(
                    id=v.id,
                    name=v.name,
                    categories=list(v.categories),
                    purposes=list(v.purposes),
                    legal_bases=[
                        LegalBasisOut(b.category, b.purpose, b.reference) for b in v.legal_bases
                    ],
                    requests_data="data:request" in v.scopes,
                )
                for v in views
                if not v.disabled and "ledger:audit" not in v.scopes
            ],
            categories=[
                CategoryOut(c.code, c.name, c.sensitive)
                for c in sorted(categories.values(), key=lambda c: c.code)
            ],
        )
