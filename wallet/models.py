"""The folder's tables: agencies and what they may ask for, data categories, procedures,
records and messages.

Rows that citizens or agencies sync (`?since=`) carry a ``change_seq`` taken from a counter per
owner inside the writing transaction, and are withdrawn by setting ``deleted_at`` (a tombstone
the next sync reports) rather than deleted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from eidentity.dbtypes import UTCDateTime
from eidentity.models import NAMING, Citizen


class WalletBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


CITIZEN_ID = Citizen.__table__.c.id


class DataCategory(WalletBase):
    """Catalogue entry (LGPDPPSO: ``sensitive`` data needs a stronger sign-in to consent)."""

    __tablename__ = "data_categories"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class Agency(WalletBase):
    """An OAuth client: an agency (publishes, asks) or a regulator (audits)."""

    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jwks: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(400))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgencyCategory(WalletBase):
    __tablename__ = "agency_categories"

    agency_id: Mapped[str] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(ForeignKey("data_categories.code"), primary_key=True)


class AgencyPurpose(WalletBase):
    __tablename__ = "agency_purposes"

    agency_id: Mapped[str] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)


class AgencyLegalBasis(WalletBase):
    """Access without consent under a statute: shown to the citizen on every use."""

    __tablename__ = "agency_legal_bases"

    agency_id: Mapped[str] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(ForeignKey("data_categories.code"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(300))


class Procedure(WalletBase):
    """A trámite an agency keeps for a citizen."""

    __tablename__ = "procedures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    citizen_id: Mapped[str] = mapped_column(ForeignKey(CITIZEN_ID, ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    steps: Mapped[str] = mapped_column(Text, default="[]")
    next_action: Mapped[str | None] = mapped_column(String(500))
    due_date: Mapped[str | None] = mapped_column(String(10))
    contact: Mapped[str | None] = mapped_column(String(300))
    body_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    change_seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("agency_id", "external_id"),
        Index("ix_procedures_citizen_seq", "citizen_id", "change_seq"),
    )


class Record(WalletBase):
    """Something an agency holds about a citizen (its content is never logged or ledgered)."""

    __tablename__ = "records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    citizen_id: Mapped[str] = mapped_column(ForeignKey(CITIZEN_ID, ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(ForeignKey("data_categories.code"))
    title: Mapped[str] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    issuer_signature: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    change_seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("agency_id", "external_id"),
        Index("ix_records_citizen_seq", "citizen_id", "change_seq"),
        Index("ix_records_citizen_category", "citizen_id", "category"),
    )


class Message(WalletBase):
    """A note on a procedure, from the citizen to the agency or back."""

    __tablename__ = "procedure_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    procedure_id: Mapped[str] = mapped_column(ForeignKey("procedures.id", ondelete="CASCADE"))
    # Copied from the procedure (they never change) so each side's feed is one index range.
    agency_id: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[str] = mapped_column(String(36))
    author: Mapped[str] = mapped_column(String(8))  # citizen | agency
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    agency_seq: Mapped[int] = mapped_column(BigInteger)
    citizen_seq: Mapped[int] = mapped_column(BigInteger)
    #: Messages are not withdrawn today; the column lets the agency feed use the sync helper.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_procedure_messages_procedure", "procedure_id", "created_at"),
        Index("ix_procedure_messages_agency_seq", "agency_id", "agency_seq"),
        Index("ix_procedure_messages_citizen_seq", "citizen_id", "citizen_seq"),
    )


class Notice(WalletBase):
    """Something the wallet tells a citizen: a new consent request, an agency that over-asked."""

    __tablename__ = "citizen_notices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey(CITIZEN_ID, ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500))
    agency_id: Mapped[str | None] = mapped_column(String(64))
    consent_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    change_seq: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_citizen_notices_citizen_seq", "citizen_id", "change_seq"),)
