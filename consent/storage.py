"""Consent storage: the current version of each consent, every version ever made, every use.

The ``consents`` row is what decisions read and lock; ``consent_versions`` is append-only
history (a version is never updated), so the ``predecessor_hash`` chain a citizen verifies is
exactly what the database holds. Uses are not versions: the row carries the live counters
(``use_count``, ``last_used_at``) and ``consent_uses`` logs each use, which is what the sliding
frequency window is counted from. I/O only: the rules live in the pure modules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consent.artefact import ConsentArtefact
from eidentity.dbtypes import UTCDateTime
from eidentity.models import NAMING


class ConsentBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ConsentRow(ConsentBase):
    """The latest version of one consent, with the columns decisions and lists filter on."""

    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    principal: Mapped[str] = mapped_column(String(36))
    consumer: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    categories: Mapped[str] = mapped_column(String(1000))  # space-separated, for display
    purpose: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    artefact: Mapped[bytes] = mapped_column(LargeBinary)  # canonical bytes of the version
    receipt: Mapped[str] = mapped_column(Text)
    anchor_queue_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    change_seq: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Live usage counters (outside the version's digest), moved on by each release.
    use_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_consents_principal_consumer", "principal", "consumer"),
        Index("ix_consents_principal_seq", "principal", "change_seq"),
        Index("ix_consents_consumer_status", "consumer", "status"),
    )

    def to_artefact(self) -> ConsentArtefact:
        """The current version with the live counters."""
        return stored_artefact(self.artefact).with_usage(self.use_count, self.last_used_at)

    def stored_artefact(self) -> ConsentArtefact:
        """The current version exactly as stored (counters as when it was made)."""
        return stored_artefact(self.artefact)


@lru_cache(maxsize=8192)
def stored_artefact(canonical: bytes) -> ConsentArtefact:
    """Parse stored canonical bytes, remembered: versions are immutable and a busy consent is
    decided on many times between two status changes (artefacts are frozen, so sharing is
    safe)."""
    return ConsentArtefact.from_dict(json.loads(canonical))


class ConsentUse(ConsentBase):
    """One release under a consent: the log the sliding frequency window is counted from."""

    __tablename__ = "consent_uses"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    consent_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("consents.consent_id", ondelete="CASCADE")
    )
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The ledger queue id of the release event (its anchor).
    queue_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_consent_uses_consent_used", "consent_id", "used_at"),)


class ConsentVersionRow(ConsentBase):
    __tablename__ = "consent_versions"

    consent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    artefact: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    anchor_queue_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(ConsentBase):
    """A signed status-change notice for an agency, retried with back-off until delivered."""

    __tablename__ = "consent_webhooks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_consent_webhooks_due", "delivered_at", "next_attempt_at"),)


async def load_for_update(session: AsyncSession, principal: str, consumer: str) -> list[ConsentRow]:
    """Every consent between a citizen and an agency, row-locked (PostgreSQL) so a decision
    and a concurrent revoke are serialised; on SQLite the writer's IMMEDIATE transaction is."""
    result = await session.scalars(
        select(ConsentRow)
        .where(ConsentRow.principal == principal, ConsentRow.consumer == consumer)
        .order_by(ConsentRow.consent_id)
        .with_for_update()
    )
    return list(result)


async def get_for_update(session: AsyncSession, consent_id: str) -> ConsentRow | None:
    return (
        await session.execute(
            select(ConsentRow).where(ConsentRow.consent_id == consent_id).with_for_update()
        )
    ).scalar_one_or_none()


def apply_version(
    session: AsyncSession,
    row: ConsentRow | None,
    artefact: ConsentArtefact,
    receipt: str,
    queue_id: int | None,
    change_seq: int,
    now: datetime,
) -> ConsentRow:
    """Store a new version: append it to history and make it the current row."""
    canonical = artefact.canonical_bytes()
    session.add(
        ConsentVersionRow(
            consent_id=artefact.consent_id,
            version=artefact.version,
            artefact=canonical,
            digest=artefact.digest(),
            anchor_queue_id=queue_id,
            created_at=now,
        )
    )
    if row is None:
        row = ConsentRow(consent_id=artefact.consent_id, created_at=now)
        session.add(row)
    row.version = artefact.version
    row.principal = artefact.data_principal
    row.consumer = artefact.data_consumer
    row.provider = artefact.data_provider
    row.status = artefact.status.value
    row.categories = " ".join(artefact.categories)
    row.purpose = artefact.purpose.code
    row.valid_until = artefact.valid_until
    row.artefact = canonical
    row.receipt = receipt
    row.anchor_queue_id = queue_id
    row.updated_at = now
    row.change_seq = change_seq
    row.use_count = artefact.use_count
    row.last_used_at = artefact.last_used_at
    return row


async def versions_of(session: AsyncSession, consent_id: str) -> Sequence[ConsentVersionRow]:
    result = await session.scalars(
        select(ConsentVersionRow)
        .where(ConsentVersionRow.consent_id == consent_id)
        .order_by(ConsentVersionRow.version)
    )
    return list(result)
