"""Consent transitions one by one: who may do what from where, time, uses and events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from consent.artefact import Actor, ConsentArtefact, FetchType, LedgerAnchor, Purpose, Status
from consent.errors import (
    ConsentActorNotAllowed,
    ConsentError,
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
from consent.machine import (
    REQUEST_TTL,
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
from consent.periods import Frequency, TimeUnit
from eidentity.errors import IdentityError

T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
Step = Callable[[ConsentArtefact, Actor, datetime, str | None], Transition]
STEPS: dict[str, Step] = {
    "approve": approve,
    "deny": deny,
    "pause": pause,
    "resume": resume,
    "revoke": revoke,
}


def requested(days: int = 30, **kw: object) -> ConsentArtefact:
    args: dict[str, object] = {
        "consent_id": "c-1",
        "principal": "cit-1",
        "consumer": "sat",
        "categories": ["constancia_situacion_fiscal"],
        "purpose": Purpose("credito", "Revisar tu situación fiscal para tu crédito"),
        "duration": timedelta(days=days),
        "now": T0,
    }
    args.update(kw)
    return request_consent(**args).artefact  # type: ignore[arg-type]


def in_status(status: Status) -> ConsentArtefact:
    start = requested()
    citizen, later = Actor.CITIZEN, T0 + timedelta(minutes=1)
    if status is Status.REQUESTED:
        return start
    if status is Status.DENIED:
        return deny(start, citizen, later).artefact
    if status is Status.EXPIRED:
        outcome = expire_if_due(start, T0 + REQUEST_TTL)
        assert outcome is not None
        return outcome.artefact
    active = approve(start, citizen, later).artefact
    if status is Status.ACTIVE:
        return active
    if status is Status.PAUSED:
        return pause(active, citizen, later).artefact
    return revoke(active, citizen, later).artefact


LEGAL = {
    ("approve", Status.REQUESTED): Status.ACTIVE,
    ("deny", Status.REQUESTED): Status.DENIED,
    ("pause", Status.ACTIVE): Status.PAUSED,
    ("resume", Status.PAUSED): Status.ACTIVE,
    ("revoke", Status.ACTIVE): Status.REVOKED,
    ("revoke", Status.PAUSED): Status.REVOKED,
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", sorted(STEPS))
def test_transition_table_for_the_citizen(action: str, status: Status) -> None:
    before = in_status(status)
    now = T0 + timedelta(minutes=2)
    if (action, status) not in LEGAL:
        with pytest.raises(ConsentTransitionError) as caught:
            STEPS[action](before, Actor.CITIZEN, now, None)
        assert type(caught.value) is ConsentTransitionError
        assert (caught.value.slug, caught.value.status) == ("consent-transition-not-allowed", 409)
        assert caught.value.extensions == {"action": action, "from_status": status.value}
        return
    after, event = STEPS[action](before, Actor.CITIZEN, now, "porque sí")
    assert after.status is LEGAL[(action, status)]
    assert after.version == before.version + 1
    assert after.predecessor_hash == before.digest()
    assert after.history[:-1] == before.history
    assert after.history[-1].status is after.status
    assert (after.history[-1].by, after.history[-1].reason) == (Actor.CITIZEN, "porque sí")
    assert event.version == after.version


@pytest.mark.parametrize(
    ("action", "status", "actor"),
    [
        ("approve", Status.REQUESTED, Actor.AGENCY),
        ("approve", Status.REQUESTED, Actor.SYSTEM),
        ("deny", Status.REQUESTED, Actor.AGENCY),
        ("pause", Status.ACTIVE, Actor.AGENCY),
        ("resume", Status.PAUSED, Actor.SYSTEM),
        ("approve", Status.REVOKED, Actor.AGENCY),  # actor is checked before state
    ],
)
def test_only_the_citizen_decides_over_their_consent(
    action: str, status: Status, actor: Actor
) -> None:
    with pytest.raises(ConsentActorNotAllowed) as caught:
        STEPS[action](in_status(status), actor, T0 + timedelta(minutes=2), None)
    assert (caught.value.slug, caught.value.status) == ("consent-actor-not-allowed", 403)


@pytest.mark.parametrize("actor", list(Actor))
def test_anyone_concerned_may_revoke(actor: Actor) -> None:
    after, event = revoke(in_status(Status.ACTIVE), actor, T0 + timedelta(hours=1))
    assert after.status is Status.REVOKED
    assert isinstance(event, ConsentRevoked)
    assert event.by is actor


def test_events_carry_what_the_ledger_needs() -> None:
    base = requested(provider="renapo", legal_basis="consent")
    expected_types = [
        (approve, ConsentGranted, "consent_granted"),
        (pause, ConsentPaused, "consent_paused"),
        (resume, ConsentResumed, "consent_resumed"),
        (revoke, ConsentRevoked, "consent_revoked"),
    ]
    artefact = base
    events: list[ConsentEvent] = [request_consent_event(base)]
    for step, kind, name in expected_types:
        artefact, event = step(artefact, Actor.CITIZEN, T0 + timedelta(hours=1), None)
        assert isinstance(event, kind)
        assert event.type == name
        events.append(event)
    for event in events:
        body = event.to_dict()
        assert body["consent_id"] == "c-1"
        assert body["consumer"] == "sat"
        assert body["provider"] == "renapo"
        assert body["principal"] == "cit-1"
        assert body["categories"] == ["constancia_situacion_fiscal"]
        assert body["purpose"] == "credito"
        assert body["legal_basis"] == "consent"
        assert body["at"].endswith("Z")
    assert isinstance(deny(base, Actor.CITIZEN, T0, None).event, ConsentDenied)


def request_consent_event(artefact: ConsentArtefact) -> ConsentEvent:
    event = ConsentRequested.of(artefact)
    assert event.by is Actor.AGENCY
    return event


def test_errors_have_the_identity_error_shape() -> None:
    mine = ConsentTransitionError("detalle", action="pause")
    theirs = IdentityError("detalle", action="pause")
    for name in ("slug", "title", "status", "detail", "extensions", "headers"):
        assert hasattr(mine, name)
        assert type(getattr(mine, name)) is type(getattr(theirs, name))
    assert mine.detail == "detalle"
    assert ConsentError().detail == ConsentError.title
    assert issubclass(ConsentLapsed, ConsentTransitionError)
    assert issubclass(ConsentActorNotAllowed, ConsentTransitionError)


def test_approval_rebases_the_window_on_the_approval_instant() -> None:
    pending = requested(days=90)
    later = T0 + timedelta(days=10, seconds=7)
    active = approve(pending, Actor.CITIZEN, later).artefact
    assert (active.valid_from, active.valid_until) == (later, later + timedelta(days=90))
    future = grant_consent(
        consent_id="c-2",
        principal="cit-1",
        consumer="sat",
        categories=["acta_nacimiento"],
        purpose=Purpose("p", "texto"),
        valid_from=T0 + timedelta(days=5),
        valid_until=T0 + timedelta(days=6),
        now=T0,
    ).artefact
    assert future.valid_from == T0 + timedelta(days=5)


def test_a_pending_request_lapses_after_its_ttl() -> None:
    pending = requested(days=365)
    assert expire_if_due(pending, T0 + REQUEST_TTL - timedelta(seconds=1)) is None
    with pytest.raises(ConsentLapsed) as caught:
        approve(pending, Actor.CITIZEN, T0 + REQUEST_TTL)
    assert (caught.value.slug, caught.value.status) == ("consent-expired", 409)
    outcome = expire_if_due(pending, T0 + REQUEST_TTL)
    assert outcome is not None
    assert outcome.artefact.status is Status.EXPIRED
    assert isinstance(outcome.event, ConsentExpired)
    assert outcome.event.by is Actor.SYSTEM


def test_active_and_paused_consents_lapse_at_valid_until() -> None:
    for status in (Status.ACTIVE, Status.PAUSED):
        artefact = in_status(status)
        end = artefact.valid_until
        assert expire_if_due(artefact, end - timedelta(seconds=1)) is None
        with pytest.raises(ConsentLapsed):
            revoke(artefact, Actor.CITIZEN, end)
        outcome = expire_if_due(artefact, end)
        assert outcome is not None
        assert outcome.artefact.status is Status.EXPIRED
    for status in (Status.REVOKED, Status.DENIED, Status.EXPIRED):
        assert expire_if_due(in_status(status), T0 + timedelta(days=9999)) is None


def test_history_never_runs_backwards_under_clock_skew() -> None:
    active = in_status(Status.ACTIVE)
    paused = pause(active, Actor.CITIZEN, T0 - timedelta(hours=5)).artefact
    assert paused.history[-1].at == active.history[-1].at
    used = record_use(in_status(Status.ACTIVE), T0 + timedelta(hours=1))
    late = pause(used, Actor.CITIZEN, T0).artefact
    assert late.history[-1].at == T0 + timedelta(hours=1)


def test_once_allows_exactly_one_use() -> None:
    active = in_status(Status.ACTIVE)
    assert active.fetch_type is FetchType.ONCE
    used = record_use(active, T0 + timedelta(hours=1))
    assert (used.use_count, used.last_used_at) == (1, T0 + timedelta(hours=1))
    # A use moves the live counters of the same version; it is not a new version.
    assert (used.version, used.predecessor_hash) == (active.version, active.predecessor_hash)
    assert used.digest() == active.digest()
    assert used.history == active.history
    assert used.status is Status.ACTIVE
    assert (active.use_count, active.last_used_at) == (0, None)  # the input is untouched
    with pytest.raises(ConsentUseRefused) as caught:
        record_use(used, T0 + timedelta(days=20))
    assert caught.value.reason == "already-used"
    assert (caught.value.slug, caught.value.status) == ("consent-required", 403)


def _in_window(log: list[datetime], frequency: Frequency, now: datetime) -> int:
    """What the caller counts from the consent's use log: uses strictly inside the window."""
    return len([u for u in log if u > frequency.window_start(now)])


def test_periodic_use_honours_the_sliding_window() -> None:
    frequency = Frequency(TimeUnit.HOUR, 2)
    pending = requested(fetch_type=FetchType.PERIODIC, frequency=frequency)
    active = approve(pending, Actor.CITIZEN, T0).artefact
    log: list[datetime] = []
    artefact = active
    for minute in (1, 2):
        now = T0 + timedelta(minutes=minute)
        artefact = record_use(artefact, now, _in_window(log, frequency, now))
        log.append(now)
    assert (artefact.use_count, artefact.last_used_at) == (2, T0 + timedelta(minutes=2))
    full = T0 + timedelta(minutes=60, seconds=59)
    assert _in_window(log, frequency, full) == 2
    with pytest.raises(ConsentUseRefused, match="número de consultas") as caught:
        record_use(artefact, full, _in_window(log, frequency, full))
    assert caught.value.reason == "frequency-exhausted"
    # The use at minute 1 leaves the window exactly one hour later.
    freed = T0 + timedelta(minutes=61)
    assert _in_window(log, frequency, freed) == 1
    artefact = record_use(artefact, freed, _in_window(log, frequency, freed))
    assert (artefact.use_count, artefact.last_used_at) == (3, freed)
    assert (artefact.version, artefact.digest()) == (active.version, active.digest())


def test_a_use_needing_the_window_count_without_it_is_refused() -> None:
    frequency = Frequency(TimeUnit.DAY, 2)
    pending = requested(fetch_type=FetchType.PERIODIC, frequency=frequency)
    artefact = approve(pending, Actor.CITIZEN, T0).artefact
    # Fewer lifetime uses than the frequency allows: the window cannot be full, no count needed.
    artefact = record_use(artefact, T0 + timedelta(minutes=1))
    artefact = record_use(artefact, T0 + timedelta(minutes=2))
    assert artefact.use_count == 2
    later = T0 + timedelta(days=5)
    with pytest.raises(ConsentUseRefused) as caught:
        record_use(artefact, later)  # the count is needed now: missing means full
    assert caught.value.reason == "frequency-exhausted"
    with pytest.raises(ConsentUseRefused):
        record_use(artefact, later, 2)
    assert record_use(artefact, later, 0).use_count == 3
    assert record_use(artefact, later, 1).use_count == 3


def test_a_use_keeps_the_versions_ledger_anchor_and_never_goes_back_in_time() -> None:
    anchor = LedgerAnchor(leaf_index=7, queue_id="q-7")
    pending = requested(fetch_type=FetchType.PERIODIC, frequency=Frequency(TimeUnit.DAY, 5))
    active = approve(pending, Actor.CITIZEN, T0).artefact.with_anchor(anchor)
    used = record_use(active, T0 - timedelta(days=1))  # a server whose clock lags
    assert used.ledger_anchor == anchor
    assert used.last_used_at == active.updated_at == T0
    ahead = record_use(used, T0 + timedelta(hours=3))
    assert ahead.last_used_at == T0 + timedelta(hours=3)
    behind = record_use(ahead, T0 + timedelta(hours=1))
    assert (behind.use_count, behind.last_used_at) == (3, T0 + timedelta(hours=3))
    assert (behind.version, behind.digest(), behind.ledger_anchor) == (
        active.version,
        active.digest(),
        anchor,
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.REQUESTED, "no-consent"),
        (Status.PAUSED, "paused"),
        (Status.REVOKED, "revoked"),
        (Status.DENIED, "denied"),
        (Status.EXPIRED, "expired"),
    ],
)
def test_no_use_outside_an_active_consent(status: Status, reason: str) -> None:
    with pytest.raises(ConsentUseRefused) as caught:
        record_use(in_status(status), T0 + timedelta(minutes=5))
    assert caught.value.reason == reason
    active = in_status(Status.ACTIVE)
    with pytest.raises(ConsentUseRefused) as caught:
        record_use(active, active.valid_until)
    assert caught.value.reason == "expired"


def test_creation_refuses_impossible_windows() -> None:
    with pytest.raises(ConsentInvalid):
        requested(duration=timedelta(0))
    with pytest.raises(ConsentInvalid):
        grant_consent(
            consent_id="c",
            principal="cit-1",
            consumer="sat",
            categories=["acta_nacimiento"],
            purpose=Purpose("p", "texto"),
            valid_until=T0,
            now=T0,
        )
