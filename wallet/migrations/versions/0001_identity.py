"""Identity: citizens, sign-in challenges, sessions, rate counters.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "citizens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("curp", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("rfc", sa.String(length=13), nullable=True),
        sa.Column("phone_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("enrolled_via", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizens")),
        sa.UniqueConstraint("curp", name=op.f("uq_citizens_curp")),
    )
    op.create_table(
        "efirma_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("to_sign", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_efirma_challenges")),
    )
    with op.batch_alter_table("efirma_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_efirma_challenges_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "rate_counters",
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "efirma_signins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("certificate_number", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=400), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_efirma_signins_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_efirma_signins")),
    )
    with op.batch_alter_table("efirma_signins", schema=None) as batch_op:
        batch_op.create_index("ix_efirma_signins_citizen", ["citizen_id"], unique=False)

    op.create_table(
        "otp_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_otp_challenges_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_otp_challenges")),
    )
    with op.batch_alter_table("otp_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_otp_challenges_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "session_families",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("acr", sa.String(length=16), nullable=False),
        sa.Column("amr", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_session_families_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_families")),
    )
    with op.batch_alter_table("session_families", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_families_citizen_id"), ["citizen_id"], unique=False
        )

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["session_families.id"],
            name=op.f("fk_refresh_tokens_family_id_session_families"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_tokens")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_family_id"), ["family_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_family_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("session_families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_families_citizen_id"))

    op.drop_table("session_families")
    with op.batch_alter_table("otp_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_otp_challenges_expires_at"))

    op.drop_table("otp_challenges")
    with op.batch_alter_table("efirma_signins", schema=None) as batch_op:
        batch_op.drop_index("ix_efirma_signins_citizen")

    op.drop_table("efirma_signins")
    op.drop_table("rate_counters")
    with op.batch_alter_table("efirma_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_efirma_challenges_expires_at"))

    op.drop_table("efirma_challenges")
    op.drop_table("citizens")
