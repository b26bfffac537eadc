"""Transparency ledger, consents and their history, webhooks, citizen notices.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "citizen_notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=True),
        sa.Column("consent_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_citizen_notices_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_notices")),
    )
    with op.batch_alter_table("citizen_notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_citizen_notices_citizen_seq", ["citizen_id", "change_seq"], unique=False
        )

    op.create_table(
        "ledger_checkpoints",
        sa.Column(
            "tree_size",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_table(
        "ledger_leaves",
        sa.Column(
            "leaf_index",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("queue_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("consumer", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=128), nullable=True),
        sa.Column("legal_basis", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "leaf_index >= 0", name=op.f("ck_ledger_leaves_leaf_index_non_negative")
        ),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_ledger_leaves")),
        sa.UniqueConstraint("queue_id", name=op.f("uq_ledger_leaves_queue_id")),
    )
    with op.batch_alter_table("ledger_leaves", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_leaves_at", ["at"], unique=False)
        batch_op.create_index("ix_ledger_leaves_consumer", ["consumer", "leaf_index"], unique=False)
        batch_op.create_index(
            "ix_ledger_leaves_legal_basis", ["legal_basis", "leaf_index"], unique=False
        )
        batch_op.create_index("ix_ledger_leaves_purpose", ["purpose", "leaf_index"], unique=False)
        batch_op.create_index("ix_ledger_leaves_subject", ["subject", "leaf_index"], unique=False)
        batch_op.create_index("ix_ledger_leaves_type", ["type", "leaf_index"], unique=False)

    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_ledger_nodes")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("consumer", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=128), nullable=True),
        sa.Column("legal_basis", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_queue")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ledger_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ledger_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_state")),
    )
    op.create_table(
        "consent_versions",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artefact", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("anchor_queue_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consent_id", "version", name=op.f("pk_consent_versions")),
    )
    op.create_table(
        "consent_webhooks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_webhooks")),
    )
    with op.batch_alter_table("consent_webhooks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_webhooks_due", ["delivered_at", "next_attempt_at"], unique=False
        )

    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=36), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("categories", sa.String(length=1000), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("artefact", sa.LargeBinary(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.Column("anchor_queue_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_consumer_status", ["consumer", "status"], unique=False)
        batch_op.create_index(
            "ix_consents_principal_consumer", ["principal", "consumer"], unique=False
        )
        batch_op.create_index(
            "ix_consents_principal_seq", ["principal", "change_seq"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_principal_seq")
        batch_op.drop_index("ix_consents_principal_consumer")
        batch_op.drop_index("ix_consents_consumer_status")

    op.drop_table("consents")
    with op.batch_alter_table("consent_webhooks", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_webhooks_due")

    op.drop_table("consent_webhooks")
    op.drop_table("consent_versions")
    op.drop_table("ledger_state")
    op.drop_table("ledger_queue")
    op.drop_table("ledger_nodes")
    with op.batch_alter_table("ledger_leaves", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_leaves_type")
        batch_op.drop_index("ix_ledger_leaves_subject")
        batch_op.drop_index("ix_ledger_leaves_purpose")
        batch_op.drop_index("ix_ledger_leaves_legal_basis")
        batch_op.drop_index("ix_ledger_leaves_consumer")
        batch_op.drop_index("ix_ledger_leaves_at")

    op.drop_table("ledger_leaves")
    op.drop_table("ledger_checkpoints")
    with op.batch_alter_table("citizen_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_citizen_notices_citizen_seq")

    op.drop_table("citizen_notices")
