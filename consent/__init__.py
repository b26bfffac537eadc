"""Consent: artefacts, their state machine, release decisions, agency requests and receipts.

Pure domain, no I/O: every function takes the current time and returns new values (and domain
events) for the caller to store. ``consent`` never imports ``wallet``.
"""

from consent.artefact import (
    ANY_PROVIDER,
    CONSENT_BASIS,
    AccessMode,
    Actor,
    ConsentArtefact,
    FetchType,
    HistoryEntry,
    LedgerAnchor,
    Purpose,
    Status,
    chain_problems,
)
from consent.decision import Deny, DenyReason, LegalBasis, Permit, decide
from consent.errors import (
    ConsentActorNotAllowed,
    ConsentError,
    ConsentInvalid,
    ConsentLapsed,
    ConsentTransitionError,
    ConsentUseRefused,
    ReceiptInvalid,
)
from consent.events import (
    ConsentDenied,
    ConsentEvent,
    ConsentExpired,
    ConsentGranted,
    ConsentPaused,
    ConsentRequested,
    ConsentResumed,
    ConsentRevoked,
)
from consent.machine import (
    Transition,
    approve,
    deny,
    expire_if_due,
    grant_consent,
    pause,
    record_use,
    request_consent,
    resume,
    revoke,
)
from consent.periods import DataLife, Frequency, TimeUnit
from consent.receipt import sign_receipt, verify_receipt
from consent.requests import (
    AgencyRegistration,
    ConsentRequest,
    OverAsk,
    open_request,
    required_assurance,
)

__all__ = [
    "ANY_PROVIDER",
    "CONSENT_BASIS",
    "AccessMode",
    "Actor",
    "AgencyRegistration",
    "ConsentActorNotAllowed",
    "ConsentArtefact",
    "ConsentDenied",
    "ConsentError",
    "ConsentEvent",
    "ConsentExpired",
    "ConsentGranted",
    "ConsentInvalid",
    "ConsentLapsed",
    "ConsentPaused",
    "ConsentRequest",
    "ConsentRequested",
    "ConsentResumed",
    "ConsentRevoked",
    "ConsentTransitionError",
    "ConsentUseRefused",
    "DataLife",
    "Deny",
    "DenyReason",
    "FetchType",
    "Frequency",
    "HistoryEntry",
    "LedgerAnchor",
    "LegalBasis",
    "OverAsk",
    "Permit",
    "Purpose",
    "ReceiptInvalid",
    "Status",
    "TimeUnit",
    "Transition",
    "approve",
    "chain_problems",
    "decide",
    "deny",
    "expire_if_due",
    "grant_consent",
    "open_request",
    "pause",
    "record_use",
    "request_consent",
    "required_assurance",
    "resume",
    "revoke",
    "sign_receipt",
    "verify_receipt",
]
