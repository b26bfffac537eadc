"""The consent state machine, as pure functions from one version to the next.

::

    (agency asks)  → requested ──approve──→ active ⇄ pause/resume ⇄ paused
                         │                     │                      │
                       deny                    └──── revoke ──────────┴──→ revoked
                         ↓
                       denied          requested | active | paused ──time──→ expired

Every change returns a :class:`Transition`: the new version (``version + 1``,
``predecessor_hash`` = digest of the old one, history appended) and the domain event the ledger
records. Nothing is stored or sent here; the caller persists both atomically.

Rules where SPEC is silent (chosen here):

* Who: only the citizen approves, denies, pauses, resumes and grants; the agency opens requests;
  revocation is open to the citizen, the consumer agency (renouncing a consent it no longer
  needs) and the system (e.g. an agency struck from the registry); only the system expires.
  Actor is checked before state, so a wrong actor never learns the state (403 before 409).
* Time: a pending request lapses ``REQUEST_TTL`` after it was made; an active or paused
  consent lapses at ``valid_until``. A lapsed consent can no longer be changed (409
  ``consent-expired``); the caller expires it with :func:`expire_if_due` — which it should
  run before acting, so the expiry gets its own event.
* Approval re-bases the validity window on the approval instant, keeping its length: an agency
  asking for 90 days gets 90 days of use, however long the citizen took to answer. A window
  that starts in the future stays where it is.
* Clock skew: an instant earlier than the latest one already in the artefact is recorded as that
  latest one, so history never runs backwards even if two servers' clocks disagree slightly.
* A recorded use is no new version and no status change: only the live counters move
  (``use_count``, ``last_used_at``, outside the digest), history is untouched and no consent event
  is emitted — the release itself is the ledger event, built by the caller. A spent ``once``
  consent stays ``active``; decisions answer ``already-used``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from consent.artefact import (
    ANY_PROVIDER,
    CONSENT_BASIS,
    AccessMode,
    Actor,
    ConsentArtefact,
    FetchType,
    HistoryEntry,
    Purpose,
    Status,
)
from consent.decision import usability
from consent.errors import (
    ConsentActorNotAllowed,
    ConsentInvalid,
    ConsentLapsed,
    ConsentTransitionError,
    ConsentUseRefused,
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
from consent.periods import DataLife, Frequency, TimeUnit, as_utc, shift

#: How long a citizen has to answer an agency's request before it lapses.
REQUEST_TTL = timedelta(days=30)
#: Least privilege when a request or grant does not say otherwise.
DEFAULT_FREQUENCY = Frequency(TimeUnit.DAY, 1)
DEFAULT_DATA_LIFE = DataLife(TimeUnit.DAY, 0)


class Transition(NamedTuple):
    artefact: ConsentArtefact
    event: ConsentEvent


_ES_STATUS = {
    Status.REQUESTED: "solicitado",
    Status.ACTIVE: "activo",
    Status.PAUSED: "en pausa",
    Status.REVOKED: "revocado",
    Status.EXPIRED: "vencido",
    Status.DENIED: "rechazado",
}


class _Rule(NamedTuple):
    verb: str
    sources: frozenset[Status]
    target: Status
    actors: frozenset[Actor]
    event: type[ConsentEvent]


_CITIZEN = frozenset({Actor.CITIZEN})
_RULES = {
    "approve": _Rule(
        "aprobar", frozenset({Status.REQUESTED}), Status.ACTIVE, _CITIZEN, ConsentGranted
    ),
    "deny": _Rule(
        "rechazar", frozenset({Status.REQUESTED}), Status.DENIED, _CITIZEN, ConsentDenied
    ),
    "pause": _Rule("pausar", frozenset({Status.ACTIVE}), Status.PAUSED, _CITIZEN, ConsentPaused),
    "resume": _Rule(
        "reanudar", frozenset({Status.PAUSED}), Status.ACTIVE, _CITIZEN, ConsentResumed
    ),
    "revoke": _Rule(
        "revocar",
        frozenset({Status.ACTIVE, Status.PAUSED}),
        Status.REVOKED,
        frozenset(Actor),
        ConsentRevoked,
    ),
}


# -- time ---------------------------------------------------------------------------------


def lapses_at(artefact: ConsentArtefact) -> datetime | None:
    """When the consent (or pending request) runs out by itself; ``None`` once terminal."""
    if artefact.status is Status.REQUESTED:
        return shift(artefact.created_at, TimeUnit.DAY, REQUEST_TTL.days)
    if artefact.status in (Status.ACTIVE, Status.PAUSED):
        return artefact.valid_until
    return None


def is_due(artefact: ConsentArtefact, now: datetime) -> bool:
    """Whether time alone has ended the consent at ``now``."""
    deadline = lapses_at(artefact)
    return deadline is not None and as_utc(now) >= deadline


def _stamp(artefact: ConsentArtefact, now: datetime) -> datetime:
    return max(as_utc(now), artefact.updated_at)


def _next_version(artefact: ConsentArtefact, **changes: Any) -> ConsentArtefact:
    return replace(
        artefact,
        version=artefact.version + 1,
        predecessor_hash=artefact.digest(),
        ledger_anchor=None,
        **changes,
    )


def _with_status(
    artefact: ConsentArtefact,
    status: Status,
    by: Actor,
    at: datetime,
    reason: str | None,
    **changes: Any,
) -> ConsentArtefact:
    entry = HistoryEntry(status=status, at=at, by=by, reason=reason)
    return _next_version(artefact, status=status, history=(*artefact.history, entry), **changes)


def expire_if_due(artefact: ConsentArtefact, now: datetime) -> Transition | None:
    """``expired`` (by the system) if time has ended the consent at ``now``; else ``None``."""
    if not is_due(artefact, now):
        return None
    new = _with_status(artefact, Status.EXPIRED, Actor.SYSTEM, _stamp(artefact, now), None)
    return Transition(new, ConsentExpired.of(new))


# -- creation -----------------------------------------------------------------------------


def _first_version(
    *,
    consent_id: str,
    principal: str,
    consumer: str,
    provider: str,
    categories: tuple[str, ...] | list[str],
    purpose: Purpose,
    legal_basis: str,
    access_mode: AccessMode,
    fetch_type: FetchType,
    frequency: Frequency,
    data_life: DataLife,
    valid_from: datetime,
    valid_until: datetime,
    status: Status,
    by: Actor,
    at: datetime,
    reason: str | None,
) -> ConsentArtefact:
    return ConsentArtefact(
        consent_id=consent_id,
        version=1,
        predecessor_hash=None,
        created_at=at,
        data_principal=principal,
        data_consumer=consumer,
        data_provider=provider,
        categories=tuple(categories),
        purpose=purpose,
        legal_basis=legal_basis,
        access_mode=access_mode,
        fetch_type=fetch_type,
        frequency=frequency,
        data_life=data_life,
        valid_from=valid_from,
        valid_until=valid_until,
        status=status,
        history=(HistoryEntry(status=status, at=at, by=by, reason=reason),),
    )


def request_consent(
    *,
    consent_id: str,
    principal: str,
    consumer: str,
    categories: tuple[str, ...] | list[str],
    purpose: Purpose,
    duration: timedelta,
    now: datetime,
    provider: str = ANY_PROVIDER,
    legal_basis: str = CONSENT_BASIS,
    access_mode: AccessMode = AccessMode.VIEW,
    fetch_type: FetchType = FetchType.ONCE,
    frequency: Frequency = DEFAULT_FREQUENCY,
    data_life: DataLife = DEFAULT_DATA_LIFE,
    reason: str | None = None,
) -> Transition:
    """A consumer's request, awaiting the citizen: ``requested``, version 1. The validity
    window drafted here (``now`` + ``duration``) is re-based on approval. Check the request
    against the agency's registration first (:func:`consent.requests.open_request`)."""
    at = as_utc(now)
    if duration < timedelta(seconds=1):
        raise ConsentInvalid("La duración debe ser positiva.")
    artefact = _first_version(
        consent_id=consent_id,
        principal=principal,
        consumer=consumer,
        provider=provider,
        categories=categories,
        purpose=purpose,
        legal_basis=legal_basis,
        access_mode=access_mode,
        fetch_type=fetch_type,
        frequency=frequency,
        data_life=data_life,
        valid_from=at,
        valid_until=_after(at, duration),
        status=Status.REQUESTED,
        by=Actor.AGENCY,
        at=at,
        reason=reason,
    )
    return Transition(artefact, ConsentRequested.of(artefact))


def grant_consent(
    *,
    consent_id: str,
    principal: str,
    consumer: str,
    categories: tuple[str, ...] | list[str],
    purpose: Purpose,
    valid_until: datetime,
    now: datetime,
    valid_from: datetime | None = None,
    provider: str = ANY_PROVIDER,
    legal_basis: str = CONSENT_BASIS,
    access_mode: AccessMode = AccessMode.VIEW,
    fetch_type: FetchType = FetchType.ONCE,
    frequency: Frequency = DEFAULT_FREQUENCY,
    data_life: DataLife = DEFAULT_DATA_LIFE,
    reason: str | None = None,
) -> Transition:
    """A citizen's proactive grant: ``active`` from version 1. ``valid_from`` defaults to now
    and may lie in the future; a window that has already ended is refused."""
    at = as_utc(now)
    start = at if valid_from is None else valid_from
    if as_utc(valid_until) <= at:
        raise ConsentInvalid("valid_until debe ser posterior al momento de otorgar.")
    artefact = _first_version(
        consent_id=consent_id,
        principal=principal,
        consumer=consumer,
        provider=provider,
        categories=categories,
        purpose=purpose,
        legal_basis=legal_basis,
        access_mode=access_mode,
        fetch_type=fetch_type,
        frequency=frequency,
        data_life=data_life,
        valid_from=start,
        valid_until=valid_until,
        status=Status.ACTIVE,
        by=Actor.CITIZEN,
        at=at,
        reason=reason,
    )
    return Transition(artefact, ConsentGranted.of(artefact))


def _after(start: datetime, duration: timedelta) -> datetime:
    try:
        return start + duration
    except OverflowError:
        raise ConsentInvalid("La duración es demasiado larga.") from None


# -- transitions --------------------------------------------------------------------------


def _check(action: str, artefact: ConsentArtefact, actor: Actor, at: datetime) -> _Rule:
    rule = _RULES[action]
    if actor not in rule.actors:
        raise ConsentActorNotAllowed(
            f"Solo la persona titular puede {rule.verb} este consentimiento.",
            action=action,
            actor=actor.value,
        )
    if artefact.status not in rule.sources:
        raise ConsentTransitionError(
            f"No se puede {rule.verb} un consentimiento {_ES_STATUS[artefact.status]}.",
            action=action,
            from_status=artefact.status.value,
        )
    if is_due(artefact, at):
        raise ConsentLapsed(
            f"No se puede {rule.verb}: el consentimiento ya venció.",
            action=action,
            from_status=artefact.status.value,
        )
    return rule


def _apply(
    action: str, artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None
) -> Transition:
    actor = Actor(actor)
    at = _stamp(artefact, now)
    rule = _check(action, artefact, actor, at)
    changes: dict[str, Any] = {}
    if action == "approve":
        start = max(artefact.valid_from, at)
        length = artefact.valid_until - artefact.valid_from
        changes = {"valid_from": start, "valid_until": _after(start, length)}
    new = _with_status(artefact, rule.target, actor, at, reason, **changes)
    return Transition(new, rule.event.of(new))


def approve(
    artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """requested → active (``ConsentGranted``), validity re-based on the approval instant."""
    return _apply("approve", artefact, actor, now, reason)


def deny(
    artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """requested → denied (``ConsentDenied``)."""
    return _apply("deny", artefact, actor, now, reason)


def pause(
    artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """active → paused (``ConsentPaused``): releases stop until resumed."""
    return _apply("pause", artefact, actor, now, reason)


def resume(
    artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """paused → active (``ConsentResumed``); the validity window is not extended."""
    return _apply("resume", artefact, actor, now, reason)


def revoke(
    artefact: ConsentArtefact, actor: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """active | paused → revoked (``ConsentRevoked``), for good."""
    return _apply("revoke", artefact, actor, now, reason)


# -- uses ---------------------------------------------------------------------------------


def record_use(
    artefact: ConsentArtefact, now: datetime, recent_uses: int | None = None
) -> ConsentArtefact:
    """The same version after one release at ``now`` (counters moved on, no new version), or
    ``ConsentUseRefused`` (403, with the decision reason) when status, validity, ``once`` or
    frequency forbid it; ``recent_uses`` as in :func:`consent.decision.usability`. Whether
    the consent covers the release (consumer, subject, category, purpose) is ``decide``'s job;
    the caller runs both on the same locked row so a concurrent revoke cannot slip between."""
    at = _stamp(artefact, now)
    refusal = usability(artefact, at, recent_uses)
    if refusal is not None:
        raise ConsentUseRefused(refusal.value, refusal.text)
    return artefact.with_usage(artefact.use_count + 1, at)
