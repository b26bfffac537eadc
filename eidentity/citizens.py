"""The citizen registry: who is enrolled, and their phone encrypted at rest."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity.curp import parse_curp
from eidentity.errors import IdentityError
from eidentity.models import Citizen


class InvalidPhone(IdentityError):
    slug = "phone-invalid"
    title = "El número de teléfono no es válido."
    status = 422


def normalize_phone(raw: str) -> str:
    """E.164 for Mexican mobiles: 10 national digits become +52XXXXXXXXXX."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.strip().startswith("+"):
        if not 8 <= len(digits) <= 15:
            raise InvalidPhone("El teléfono debe tener entre 8 y 15 dígitos.")
        return "+" + digits
    if len(digits) == 10:
        return "+52" + digits
    if len(digits) == 12 and digits.startswith("52"):
        return "+" + digits
    raise InvalidPhone("Escribe el teléfono a 10 dígitos, por ejemplo 5512345678.")


class PhoneCipher:
    """AES-256-GCM with the citizen id as associated data, so ciphertexts can't be swapped."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("phone key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, citizen_id: str, phone: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, phone.encode(), citizen_id.encode())

    def decrypt(self, citizen_id: str, blob: bytes) -> str | None:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], citizen_id.encode()).decode()
        except (InvalidTag, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class EnrolmentResult:
    citizen: Citizen
    created: bool


class CitizenRegistry:
    def __init__(self, cipher: PhoneCipher) -> None:
        self.cipher = cipher

    async def by_curp(self, session: AsyncSession, curp: str) -> Citizen | None:
        result = await session.execute(select(Citizen).where(Citizen.curp == curp))
        return result.scalar_one_or_none()

    async def by_id(self, session: AsyncSession, citizen_id: str) -> Citizen | None:
        return await session.get(Citizen, citizen_id)

    def phone_of(self, citizen: Citizen) -> str | None:
        if citizen.phone_ciphertext is None:
            return None
        return self.cipher.decrypt(citizen.id, citizen.phone_ciphertext)

    async def enrol(
        self,
        session: AsyncSession,
        *,
        curp: str,
        now: datetime,
        via: str,
        phone: str | None = None,
        name: str | None = None,
        rfc: str | None = None,
    ) -> EnrolmentResult:
        """Create the citizen or update what we learned; the CURP is validated first."""
        value = parse_curp(curp).value
        normalized_phone = normalize_phone(phone) if phone else None
        existing = await self.by_curp(session, value)
        if existing is not None:
            if normalized_phone is not None:
                existing.phone_ciphertext = self.cipher.encrypt(existing.id, normalized_phone)
            if name:
                existing.name = name
            if rfc:
                existing.rfc = rfc
            existing.updated_at = now
            return EnrolmentResult(existing, created=False)
        citizen_id = str(uuid.uuid4())
        citizen = Citizen(
            id=citizen_id,
            curp=value,
            name=name,
            rfc=rfc,
            phone_ciphertext=(
                self.cipher.encrypt(citizen_id, normalized_phone) if normalized_phone else None
            ),
            enrolled_via=via,
            created_at=now,
            updated_at=now,
        )
        session.add(citizen)
        await session.flush()
        return EnrolmentResult(citizen, created=True)
