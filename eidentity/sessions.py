"""Sessions: an access JWT plus an opaque refresh token that rotates on every use.

A refresh token that was already rotated and comes back means two parties hold it (it was
stolen, or the app misbehaved); the only safe answer is to end the whole session family.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.assurance import AssuranceLevel
from eidentity.errors import RefreshInvalid
from eidentity.models import RefreshToken, SessionFamily
from eidentity.tokens import AccessTokens


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    acr: AssuranceLevel


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    def __init__(self, tokens: AccessTokens, refresh_ttl_seconds: int) -> None:
        self.tokens = tokens
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    async def start(
        self,
        session: AsyncSession,
        citizen_id: str,
        acr: AssuranceLevel,
        amr: tuple[str, ...],
        now: datetime,
    ) -> TokenPair:
        family = SessionFamily(
            id=secrets.token_hex(16),
            citizen_id=citizen_id,
            acr=acr.value,
            amr=" ".join(amr),
            created_at=now,
            expires_at=now + self.refresh_ttl,
        )
        session.add(family)
        await session.flush()  # the family row must exist before its first token
        return await self._issue(session, family, now)

    async def _issue(
        self, session: AsyncSession, family: SessionFamily, now: datetime
    ) -> TokenPair:
        refresh = secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                token_hash=_hash(refresh),
                family_id=family.id,
                created_at=now,
                expires_at=min(now + self.refresh_ttl, family.expires_at),
            )
        )
        acr = AssuranceLevel(family.acr)
        access = self.tokens.issue_for_citizen(
            family.citizen_id, acr, tuple(family.amr.split()), int(now.timestamp())
        )
        await session.flush()
        return TokenPair(access, self.tokens.ttl, refresh, acr)

    async def refresh(self, session: AsyncSession, refresh_token: str, now: datetime) -> TokenPair:
        """Rotate; on reuse of a rotated token, revoke the family and refuse."""
        row = await session.get(RefreshToken, _hash(refresh_token), with_for_update=True)
        if row is None:
            raise RefreshInvalid()
        family_id = row.family_id
        family = await session.get(SessionFamily, family_id, with_for_update=True)
        if family is None or family.revoked_at is not None:
            raise RefreshInvalid()
        if row.rotated_at is None and (now >= row.expires_at or now >= family.expires_at):
            raise RefreshInvalid()
        claimed = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == row.token_hash, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            # Already rotated: a second holder. End every token of this sign-in, durably,
            # before refusing (the caller's rollback must not undo the revocation).
            await session.rollback()
            await session.execute(
                update(SessionFamily)
                .where(SessionFamily.id == family_id)
                .values(revoked_at=now, revoked_reason="refresh-reuse")
            )
            await session.commit()
            raise RefreshInvalid(
                "Este token de sesión ya se había usado; cerramos la sesión por seguridad."
            )
        return await self._issue(session, family, now)

    async def logout(self, session: AsyncSession, refresh_token: str, now: datetime) -> bool:
        row = await session.get(RefreshToken, _hash(refresh_token))
        if row is None:
            return False
        await session.execute(
            update(SessionFamily)
            .where(SessionFamily.id == row.family_id, SessionFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="logout")
        )
        return True
