"""Every table the service owns, for Alembic: each domain package keeps its own metadata."""

from __future__ import annotations

from sqlalchemy import MetaData

from eidentity.models import IdentityBase

target_metadata: list[MetaData] = [IdentityBase.metadata]
