"""The release decision: may this consumer get this category about this citizen, now?

``decide`` is a pure, total function over artefacts and registered legal bases: same inputs,
same answer, and never an exception, so the data-release path can log every outcome (permit or
deny) without a failure mode of its own.

Precedence (SPEC is silent; chosen here):

* ``consent_id`` given → the decision is about exactly that consent, legal bases are not
  consulted: the agency chose to act under the citizen's consent, and if that fails it must
  learn why (and the citizen sees it).
* otherwise a registered legal basis wins over consents: when a statute already obliges the
  release, presenting it as "your consent" would mislead the citizen into thinking a revoke
  could stop it, and it would spend uses of a consent that was not needed. The release is
  shown with the article instead.
* otherwise the live consent of (consumer, subject) covering the request permits; among several
  the one that lapses first (then the smallest ``consent_id``) is used up first.
* otherwise deny with the reason of the consent that came *closest* to permitting, closeness
  being the order of :class:`DenyReason` (ties: smallest ``consent_id``); ``no-consent`` when the
  consumer holds no consent from the subject at all. Consents of other consumers or subjects are
  never looked at in this mode, so no reason can reveal that they exist.

Provider: a consent naming a holder covers only that holder; ``provider=None`` (the caller did
not say where the data comes from) is covered only by consents for ``any`` holder — fail closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from consent.artefact import ConsentArtefact, FetchType, Status
from consent.periods import EARLIEST, as_utc


class DenyReason(str, Enum):
    """Stable reason codes, declared from farthest to closest to a permit."""

    NO_CONSENT = "no-consent"
    CONSENT_NOT_FOUND = "consent-not-found"
    CONSENT_OTHER_CONSUMER = "consent-other-consumer"
    CONSENT_OF_OTHER_SUBJECT = "consent-of-other-subject"
    PROVIDER_NOT_COVERED = "provider-not-covered"
    CATEGORY_NOT_COVERED = "category-not-covered"
    PURPOSE_MISMATCH = "purpose-mismatch"
    DENIED = "denied"
    REVOKED = "revoked"
    EXPIRED = "expired"
    PAUSED = "paused"
    NOT_YET_VALID = "not-yet-valid"
    ALREADY_USED = "already-used"
    FREQUENCY_EXHAUSTED = "frequency-exhausted"

    @property
    def text(self) -> str:
        """es-MX sentence for problem details and the citizen's activity view."""
        return _TEXT[self]


_RANK = {reason: index for index, reason in enumerate(DenyReason)}

_TEXT = {
    DenyReason.NO_CONSENT: "La persona no ha dado su consentimiento para este uso.",
    DenyReason.CONSENT_NOT_FOUND: "No existe ese consentimiento.",
    DenyReason.CONSENT_OTHER_CONSUMER: "Ese consentimiento no se otorgó a esta dependencia.",
    DenyReason.CONSENT_OF_OTHER_SUBJECT: "Ese consentimiento es de otra persona.",
    DenyReason.PROVIDER_NOT_COVERED: "El consentimiento no cubre datos de esa dependencia.",
    DenyReason.CATEGORY_NOT_COVERED: "El consentimiento no cubre esa categoría de datos.",
    DenyReason.PURPOSE_MISMATCH: "El consentimiento se dio para otra finalidad.",
    DenyReason.DENIED: "La persona rechazó esta solicitud de consentimiento.",
    DenyReason.REVOKED: "La persona revocó este consentimiento.",
    DenyReason.EXPIRED: "El consentimiento ya venció.",
    DenyReason.PAUSED: "La persona pausó este consentimiento.",
    DenyReason.NOT_YET_VALID: "El consentimiento todavía no está vigente.",
    DenyReason.ALREADY_USED: "El consentimiento era para una sola consulta y ya se usó.",
    DenyReason.FREQUENCY_EXHAUSTED: "Se alcanzó el número de consultas permitido por periodo.",
}


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """A statute that lets ``consumer`` obtain ``category`` for ``purpose`` without consent;
    ``reference`` (e.g. ``Art. 91 Ley General de Población``) is shown to the citizen."""

    consumer: str
    category: str
    purpose: str
    reference: str


@dataclass(frozen=True, slots=True)
class Permit:
    """Release allowed, under a consent (``consent_id`` and the ``version`` decided on) or
    under a legal basis (``legal_basis`` = the statute reference)."""

    consent_id: str | None = None
    version: int | None = None
    legal_basis: str | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    """Release refused; ``consent_id`` is the consent the reason is about, if any."""

    reason: DenyReason
    consent_id: str | None = None


Decision = Permit | Deny


def needs_window_count(artefact: ConsentArtefact) -> bool:
    """Whether the frequency check needs the number of uses inside the window: only when the
    lifetime total could already fill it (uses in the window never exceed ``use_count``), so
    a store counts its use log only for consents used that much."""
    return artefact.use_count >= artefact.frequency.value


def usability(
    artefact: ConsentArtefact, now: datetime, recent_uses: int | None = None
) -> DenyReason | None:
    """Why the consent cannot be used at ``now`` whatever is asked (status, validity window,
    ``once``, frequency), or ``None`` if it can. A pending request is ``no-consent``: nothing
    has been consented yet. Validity is ``valid_from <= now < valid_until``.

    ``recent_uses`` is the number of uses strictly after ``frequency.window_start(now)``; it
    may be omitted when :func:`needs_window_count` is false. Omitted when it is needed, the
    window counts as full (fail closed)."""
    now = as_utc(now)
    status = artefact.status
    if status is Status.DENIED:
        return DenyReason.DENIED
    if status is Status.REVOKED:
        return DenyReason.REVOKED
    if status is Status.EXPIRED:
        return DenyReason.EXPIRED
    if status is Status.REQUESTED:
        return DenyReason.NO_CONSENT
    if now >= artefact.valid_until:
        return DenyReason.EXPIRED
    if status is Status.PAUSED:
        return DenyReason.PAUSED
    if now < artefact.valid_from:
        return DenyReason.NOT_YET_VALID
    if artefact.fetch_type is FetchType.ONCE and artefact.use_count >= 1:
        return DenyReason.ALREADY_USED
    if needs_window_count(artefact) and (
        recent_uses is None or recent_uses >= artefact.frequency.value
    ):
        return DenyReason.FREQUENCY_EXHAUSTED
    return None


def coverage(
    artefact: ConsentArtefact,
    consumer: str,
    subject: str,
    category: str,
    purpose: str,
    provider: str | None,
) -> DenyReason | None:
    """Why the consent does not speak about this request at all, or ``None`` if it does.
    The consumer is checked first: an agency naming another agency's consent id learns only
    that it is not its own, never whose citizen it concerns."""
    if artefact.data_consumer != consumer:
        return DenyReason.CONSENT_OTHER_CONSUMER
    if artefact.data_principal != subject:
        return DenyReason.CONSENT_OF_OTHER_SUBJECT
    if not artefact.covers_provider(provider):
        return DenyReason.PROVIDER_NOT_COVERED
    if category not in artefact.categories:
        return DenyReason.CATEGORY_NOT_COVERED
    if artefact.purpose.code != purpose:
        return DenyReason.PURPOSE_MISMATCH
    return None


def evaluate(
    artefact: ConsentArtefact,
    consumer: str,
    subject: str,
    category: str,
    purpose: str,
    now: datetime,
    provider: str | None = None,
    recent_uses: int | None = None,
) -> DenyReason | None:
    """The first reason this one consent does not permit the request, or ``None``."""
    return coverage(artefact, consumer, subject, category, purpose, provider) or usability(
        artefact, now, recent_uses
    )


def _recency(artefact: ConsentArtefact) -> tuple[int, int, datetime, str]:
    return (
        artefact.version,
        artefact.use_count,
        artefact.last_used_at or EARLIEST,
        artefact.digest(),
    )


def latest_versions(consents: Iterable[ConsentArtefact]) -> dict[str, ConsentArtefact]:
    """Newest state of each consent, so callers may pass whole histories: the highest version,
    then the most used copy of it (uses move counters, not versions), then — for two different
    artefacts claiming the same version — the larger digest: arbitrary but deterministic."""
    latest: dict[str, ConsentArtefact] = {}
    for artefact in consents:
        held = latest.get(artefact.consent_id)
        if held is None or _recency(artefact) > _recency(held):
            latest[artefact.consent_id] = artefact
    return latest


def decide(
    consents: Iterable[ConsentArtefact],
    legal_bases: Iterable[LegalBasis],
    consumer: str,
    subject: str,
    category: str,
    purpose: str,
    now: datetime,
    consent_id: str | None = None,
    provider: str | None = None,
    recent_uses: Mapping[str, int] | None = None,
) -> Permit | Deny:
    """Permit or deny one release; see the module docstring for the precedence rules.

    ``recent_uses`` maps a consent id to its uses inside the frequency window ending at
    ``now`` (see :func:`usability`); consents missing from it that need the count are
    treated as exhausted."""
    now = as_utc(now)
    recent = recent_uses or {}
    latest = latest_versions(consents)
    if consent_id is not None:
        chosen = latest.get(consent_id)
        if chosen is None:
            return Deny(DenyReason.CONSENT_NOT_FOUND, consent_id)
        reason = evaluate(
            chosen, consumer, subject, category, purpose, now, provider, recent.get(consent_id)
        )
        if reason is None:
            return Permit(consent_id=chosen.consent_id, version=chosen.version)
        return Deny(reason, consent_id)

    references = sorted(
        basis.reference
        for basis in legal_bases
        if (basis.consumer, basis.category, basis.purpose) == (consumer, category, purpose)
    )
    if references:
        return Permit(legal_basis=references[0])

    pool = [
        a for a in latest.values() if a.data_consumer == consumer and a.data_principal == subject
    ]
    outcomes = [
        (
            evaluate(
                a, consumer, subject, category, purpose, now, provider, recent.get(a.consent_id)
            ),
            a,
        )
        for a in pool
    ]
    permitting = [a for reason, a in outcomes if reason is None]
    if permitting:
        best = min(permitting, key=lambda a: (a.valid_until, a.consent_id))
        return Permit(consent_id=best.consent_id, version=best.version)
    refusals = [(reason, a) for reason, a in outcomes if reason is not None]
    if not refusals:
        return Deny(DenyReason.NO_CONSENT)
    reason, closest = min(refusals, key=lambda o: (-_RANK[o[0]], o[1].consent_id))
    return Deny(reason, closest.consent_id)
