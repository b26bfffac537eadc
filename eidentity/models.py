"""Identity tables. The schema itself is created by the app's Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from eidentity.dbtypes import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class IdentityBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Citizen(IdentityBase):
    """A person known to the wallet. The id, never the CURP, travels in tokens and events."""

    __tablename__ = "citizens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    curp: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    rfc: Mapped[str | None] = mapped_column(String(13))
    phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    enrolled_via: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtpChallenge(IdentityBase):
    """One code sent (or, for an unknown CURP, pretended to be sent)."""

    __tablename__ = "otp_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EfirmaChallenge(IdentityBase):
    __tablename__ = "efirma_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    to_sign: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EfirmaSignIn(IdentityBase):
    """Evidence of each e.firma sign-in: which certificate and what revocation said."""

    __tablename__ = "efirma_signins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    certificate_number: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(400))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    evidence: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_efirma_signins_citizen", "citizen_id"),)


class SessionFamily(IdentityBase):
    """A sign-in and every refresh token rotated from it; revoking it ends them all."""

    __tablename__ = "session_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    acr: Mapped[str] = mapped_column(String(16))
    amr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(IdentityBase):
    """Only the SHA-256 of a refresh token is kept; the token itself lives on the device."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("session_families.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateCounter(IdentityBase):
    """Fixed-window counters shared by every worker through the database."""

    __tablename__ = "rate_counters"

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
