"""Consent uses leave the version chain: live counters on the consent, a use log beside it.

Before this revision every release made a new, signed consent version carrying the in-window
use timestamps (``uses``). Now the ``consents`` row carries ``use_count`` / ``last_used_at``
and ``consent_uses`` logs each use. Existing counters and in-window uses are carried over
from each consent's current artefact; stored versions are left exactly as they were written.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from eidentity.dbtypes import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def upgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("use_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "consent_uses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.consent_id"],
            name=op.f("fk_consent_uses_consent_id_consents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_uses")),
    )
    with op.batch_alter_table("consent_uses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_uses_consent_used", ["consent_id", "used_at"], unique=False
        )

    consents = sa.table(
        "consents",
        sa.column("consent_id", sa.String()),
        sa.column("artefact", sa.LargeBinary()),
        sa.column("use_count", sa.Integer()),
        sa.column("last_used_at", UTCDateTime()),
    )
    uses = sa.table(
        "consent_uses",
        sa.column("consent_id", sa.String()),
        sa.column("used_at", UTCDateTime()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(consents.c.consent_id, consents.c.artefact)).all()
    for consent_id, artefact in rows:
        data = json.loads(artefact)
        count = int(data.get("use_count") or 0)
        if not count:
            continue
        last = data.get("last_used_at")
        bind.execute(
            consents.update()
            .where(consents.c.consent_id == consent_id)
            .values(use_count=count, last_used_at=_instant(last) if last else None)
        )
        in_window = [_instant(u) for u in data.get("uses") or []]
        if in_window:
            bind.execute(
                uses.insert(), [{"consent_id": consent_id, "used_at": u} for u in in_window]
            )


def downgrade() -> None:
    with op.batch_alter_table("consent_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_uses_consent_used")
    op.drop_table("consent_uses")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("use_count")
