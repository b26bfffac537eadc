"""Every table the service owns, for Alembic: each domain package keeps its own metadata."""

from __future__ import annotations

from sqlalchemy import MetaData

import eidentity.oauth.models  # noqa: F401  (registers the replay-cache table)
from consent.storage import ConsentBase
from eidentity.models import IdentityBase
from ledger.storage import ledger_metadata
from wallet.lowband.tables import lowband_metadata
from wallet.models import WalletBase

target_metadata: list[MetaData] = [
    IdentityBase.metadata,
    WalletBase.metadata,
    lowband_metadata,
    ledger_metadata,
    ConsentBase.metadata,
]
