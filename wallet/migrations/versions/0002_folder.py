"""Folder: agencies, categories, procedures, records, messages, sync, idempotency, jti.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The catalogue every deployment starts with (LGPDPPSO: clinical records are sensitive).
DEFAULT_CATEGORIES = [
    ("acta_nacimiento", "Acta de nacimiento", False),
    ("curp_certificada", "Constancia de CURP", False),
    ("constancia_situacion_fiscal", "Constancia de situación fiscal", False),
    ("nss_imss", "Número de seguridad social (IMSS)", False),
    ("semanas_cotizadas", "Semanas cotizadas (IMSS)", False),
    ("certificado_estudios", "Certificado de estudios", False),
    ("titulo_profesional", "Título y cédula profesional", False),
    ("padron_bienestar", "Registro en programas del Bienestar", False),
    ("comprobante_domicilio", "Comprobante de domicilio", False),
    ("expediente_clinico", "Expediente clínico", True),
    ("discapacidad", "Certificado de discapacidad", True),
]


def upgrade() -> None:

    op.create_table(
        "oauth_assertion_jtis",
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti_hash", name=op.f("pk_oauth_assertion_jtis")),
    )
    with op.batch_alter_table("oauth_assertion_jtis", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_assertion_jtis_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "agencies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=400), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
    )
    op.create_table(
        "data_categories",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_data_categories")),
    )
    op.create_table(
        "agency_categories",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_categories_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category"],
            ["data_categories.code"],
            name=op.f("fk_agency_categories_category_data_categories"),
        ),
        sa.PrimaryKeyConstraint("agency_id", "category", name=op.f("pk_agency_categories")),
    )
    op.create_table(
        "agency_legal_bases",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_legal_bases_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category"],
            ["data_categories.code"],
            name=op.f("fk_agency_legal_bases_category_data_categories"),
        ),
        sa.PrimaryKeyConstraint(
            "agency_id", "category", "purpose", name=op.f("pk_agency_legal_bases")
        ),
    )
    op.create_table(
        "agency_purposes",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_purposes_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agency_id", "purpose", name=op.f("pk_agency_purposes")),
    )
    op.create_table(
        "procedures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("next_action", sa.String(length=500), nullable=True),
        sa.Column("due_date", sa.String(length=10), nullable=True),
        sa.Column("contact", sa.String(length=300), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_procedures_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_procedures_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedures")),
        sa.UniqueConstraint("agency_id", "external_id", name=op.f("uq_procedures_agency_id")),
    )
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_procedures_citizen_seq", ["citizen_id", "change_seq"], unique=False
        )

    op.create_table(
        "records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("issuer_signature", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_records_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["category"], ["data_categories.code"], name=op.f("fk_records_category_data_categories")
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_records_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint("agency_id", "external_id", name=op.f("uq_records_agency_id")),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_citizen_category", ["citizen_id", "category"], unique=False
        )
        batch_op.create_index("ix_records_citizen_seq", ["citizen_id", "change_seq"], unique=False)

    op.create_table(
        "procedure_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("procedure_id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agency_seq", sa.BigInteger(), nullable=False),
        sa.Column("citizen_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["procedures.id"],
            name=op.f("fk_procedure_messages_procedure_id_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_messages")),
    )
    with op.batch_alter_table("procedure_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_procedure_messages_agency_seq", ["agency_id", "agency_seq"], unique=False
        )
        batch_op.create_index(
            "ix_procedure_messages_citizen_seq", ["citizen_id", "citizen_seq"], unique=False
        )
        batch_op.create_index(
            "ix_procedure_messages_procedure", ["procedure_id", "created_at"], unique=False
        )

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "sync_counters",
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_sync_counters")),
    )
    categories = sa.table(
        "data_categories",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("sensitive", sa.Boolean),
    )
    op.bulk_insert(
        categories,
        [
            {"code": code, "name": name, "sensitive": sensitive}
            for code, name, sensitive in DEFAULT_CATEGORIES
        ],
    )


def downgrade() -> None:

    op.drop_table("sync_counters")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_expires_at"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("procedure_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_procedure_messages_procedure")
        batch_op.drop_index("ix_procedure_messages_citizen_seq")
        batch_op.drop_index("ix_procedure_messages_agency_seq")

    op.drop_table("procedure_messages")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_citizen_seq")
        batch_op.drop_index("ix_records_citizen_category")

    op.drop_table("records")
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.drop_index("ix_procedures_citizen_seq")

    op.drop_table("procedures")
    op.drop_table("agency_purposes")
    op.drop_table("agency_legal_bases")
    op.drop_table("agency_categories")
    op.drop_table("data_categories")
    op.drop_table("agencies")
    with op.batch_alter_table("oauth_assertion_jtis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_assertion_jtis_expires_at"))

    op.drop_table("oauth_assertion_jtis")
