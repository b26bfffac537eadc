"""The agency registry: who may publish, ask and audit, with which keys and for what.

An agency's registration bounds everything it can do later: a consent request for a category
or purpose outside it is refused (and the citizen warned), and legal-basis access exists only
for the (category, purpose, statute) triples registered here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eidentity.oauth import (
    AGENCY_SCOPES,
    KNOWN_SCOPES,
    RegisteredClient,
    UnusableJwks,
    check_client_jwks,
)
from wallet.models import Agency, AgencyCategory, AgencyLegalBasis, AgencyPurpose, DataCategory

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_]{1,63}$")


class RegistryError(ValueError):
    """A registration that cannot be accepted; the message is for the operator (es-MX)."""


@dataclass(frozen=True, slots=True)
class LegalBasis:
    category: str
    purpose: str
    reference: str

    @classmethod
    def parse(cls, text: str) -> LegalBasis:
        parts = text.split(":", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise RegistryError(
                f"Base legal «{text}»: usa CATEGORIA:PROPOSITO:REFERENCIA, "
                "p. ej. acta_nacimiento:verificacion_identidad:Art. 91 Ley General de Población."
            )
        return cls(parts[0].strip(), parts[1].strip(), parts[2].strip())


@dataclass(frozen=True, slots=True)
class AgencyView:
    id: str
    name: str
    scopes: tuple[str, ...]
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_bases: tuple[LegalBasis, ...]
    disabled: bool
    key_ids: tuple[str, ...]
    webhook_url: str | None


def check_jwks(raw: str | dict[str, Any]) -> dict[str, Any]:
    """A public JWK Set the token endpoint can use; private or symmetric keys are refused."""
    try:
        jwks = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise RegistryError("El JWKS no es JSON válido.") from None
    if not isinstance(jwks, dict):
        raise RegistryError("El JWKS debe ser un objeto con una lista «keys».")
    try:
        check_client_jwks(jwks)
    except UnusableJwks as exc:
        raise RegistryError(str(exc)) from None
    return {"keys": jwks["keys"]}


def _codes(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        value = value.strip()
        if not _CODE.match(value):
            raise RegistryError(f"{what} «{value}»: usa minúsculas, números y guion bajo.")
        out.append(value)
    return tuple(sorted(set(out)))


class AgencyRegistry:
    async def categories(self, session: AsyncSession) -> dict[str, DataCategory]:
        rows = await session.scalars(select(DataCategory))
        return {row.code: row for row in rows}

    async def add_category(
        self, session: AsyncSession, code: str, name: str, sensitive: bool
    ) -> DataCategory:
        [code] = _codes([code], "Categoría")
        if not name.strip():
            raise RegistryError("La categoría necesita un nombre.")
        existing = await session.get(DataCategory, code)
        if existing is not None:
            existing.name, existing.sensitive = name.strip(), sensitive
            return existing
        row = DataCategory(code=code, name=name.strip(), sensitive=sensitive)
        session.add(row)
        return row

    async def add(
        self,
        session: AsyncSession,
        *,
        agency_id: str,
        name: str,
        jwks: str | dict[str, Any],
        categories: Sequence[str],
        purposes: Sequence[str],
        legal_bases: Sequence[LegalBasis] = (),
        scopes: Collection[str] = AGENCY_SCOPES,
        webhook_url: str | None = None,
        now: datetime,
    ) -> AgencyView:
        """Register (or re-register, replacing its lists) an agency or regulator."""
        if not _ID.match(agency_id):
            raise RegistryError("El id de la dependencia usa minúsculas, números, - o _ (2-64).")
        if not name.strip():
            raise RegistryError("La dependencia necesita un nombre.")
        scope_set = tuple(sorted(set(scopes)))
        unknown = [s for s in scope_set if s not in KNOWN_SCOPES]
        if unknown or not scope_set:
            raise RegistryError(f"Scopes desconocidos: {' '.join(unknown) or '(ninguno)'}.")
        category_codes = _codes(categories, "Categoría")
        purpose_codes = _codes(purposes, "Propósito")
        known = await self.categories(session)
        for basis in legal_bases:
            _codes([basis.category], "Categoría")
            _codes([basis.purpose], "Propósito")
        missing = sorted(
            {c for c in category_codes if c not in known}
            | {b.category for b in legal_bases if b.category not in known}
        )
        if missing:
            raise RegistryError(
                f"Categorías no registradas en el catálogo: {', '.join(missing)} "
                "(usa `carpeta category add`)."
            )
        if webhook_url is not None and not webhook_url.startswith(("https://", "http://")):
            raise RegistryError("El webhook debe ser una URL https://.")
        checked = check_jwks(jwks)
        agency = await session.get(Agency, agency_id)
        if agency is None:
            agency = Agency(id=agency_id, created_at=now)
            session.add(agency)
        agency.name = name.strip()
        agency.jwks = json.dumps(checked, sort_keys=True)
        agency.scopes = " ".join(scope_set)
        agency.disabled = False
        agency.webhook_url = webhook_url
        agency.updated_at = now
        await session.flush()
        for table in (AgencyCategory, AgencyPurpose, AgencyLegalBasis):
            await session.execute(delete(table).where(table.agency_id == agency_id))
        session.add_all(AgencyCategory(agency_id=agency_id, category=c) for c in category_codes)
        session.add_all(AgencyPurpose(agency_id=agency_id, purpose=p) for p in purpose_codes)
        session.add_all(
            AgencyLegalBasis(
                agency_id=agency_id, category=b.category, purpose=b.purpose, reference=b.reference
            )
            for b in {(b.category, b.purpose): b for b in legal_bases}.values()
        )
        await session.flush()
        view = await self.view(session, agency_id)
        assert view is not None
        return view

    async def set_disabled(self, session: AsyncSession, agency_id: str, disabled: bool) -> None:
        agency = await session.get(Agency, agency_id)
        if agency is None:
            raise RegistryError(f"No existe la dependencia «{agency_id}».")
        agency.disabled = disabled

    async def set_jwks(
        self, session: AsyncSession, agency_id: str, jwks: str | dict[str, Any], now: datetime
    ) -> None:
        agency = await session.get(Agency, agency_id)
        if agency is None:
            raise RegistryError(f"No existe la dependencia «{agency_id}».")
        agency.jwks = json.dumps(check_jwks(jwks), sort_keys=True)
        agency.updated_at = now

    async def view(self, session: AsyncSession, agency_id: str) -> AgencyView | None:
        agency = await session.get(Agency, agency_id)
        if agency is None:
            return None
        categories = await session.scalars(
            select(AgencyCategory.category).where(AgencyCategory.agency_id == agency_id)
        )
        purposes = await session.scalars(
            select(AgencyPurpose.purpose).where(AgencyPurpose.agency_id == agency_id)
        )
        bases = await session.scalars(
            select(AgencyLegalBasis).where(AgencyLegalBasis.agency_id == agency_id)
        )
        keys = json.loads(agency.jwks).get("keys", [])
        return AgencyView(
            id=agency.id,
            name=agency.name,
            scopes=tuple(agency.scopes.split()),
            categories=tuple(sorted(categories)),
            purposes=tuple(sorted(purposes)),
            legal_bases=tuple(
                sorted(
                    (LegalBasis(b.category, b.purpose, b.reference) for b in bases),
                    key=lambda b: (b.category, b.purpose),
                )
            ),
            disabled=agency.disabled,
            key_ids=tuple(str(k.get("kid", "?")) for k in keys),
            webhook_url=agency.webhook_url,
        )

    async def list(self, session: AsyncSession) -> list[AgencyView]:
        ids = await session.scalars(select(Agency.id).order_by(Agency.id))
        views = [await self.view(session, agency_id) for agency_id in list(ids)]
        return [v for v in views if v is not None]


class AgencyClientStore:
    """The token endpoint's view of the registry (the ``ClientStore`` port)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, client_id: str) -> RegisteredClient | None:
        if not _ID.match(client_id):
            return None
        async with self.sessions() as session:
            agency = await session.get(Agency, client_id)
            if agency is None:
                return None
            return RegisteredClient(
                client_id=agency.id,
                name=agency.name,
                jwks=json.loads(agency.jwks),
                scopes=frozenset(agency.scopes.split()),
                disabled=agency.disabled,
            )
