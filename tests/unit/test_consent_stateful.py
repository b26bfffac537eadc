"""The consent state machine against a tiny independent model (Hypothesis stateful testing).

Random sequences of request / grant / approve / deny / pause / resume / revoke / clock advance /
expiry / use / decision. Every legal step must match the model, every illegal one must raise
with the model's slug, every decision must equal the model's, and every consent's versions
must form a verifying hash chain with an append-only, time-ordered history.

The model keeps each consent's use log, as the store does; the machine under test only keeps
the counters and is handed the in-window count the model computes (or, sometimes, no count,
which must fail closed once the count could matter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import event as observe
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from consent.artefact import Actor, ConsentArtefact, FetchType, Purpose, Status, chain_problems
from consent.decision import Deny, DenyReason, LegalBasis, Permit, decide
from consent.errors import ConsentTransitionError, ConsentUseRefused
from consent.events import ConsentEvent
from consent.machine import (
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

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CONSUMERS = ("sat", "imss")
SUBJECTS = ("ana", "beto")
CATEGORIES = ("acta_nacimiento", "nss_imss", "expediente_clinico")
PURPOSES = ("tramite", "auditoria")
LEGAL_BASES = (LegalBasis("imss", "nss_imss", "auditoria", "Art. 251 Ley del Seguro Social"),)
UNIT_SECONDS = {TimeUnit.HOUR: 3600, TimeUnit.DAY: 86400, TimeUnit.WEEK: 7 * 86400}
REQUEST_TTL = timedelta(days=30)
MAX_CONSENTS = 4  # few consents, so that random steps keep hitting the same ones

ACTIONS = {"approve": approve, "deny": deny, "pause": pause, "resume": resume, "revoke": revoke}
# The model's own transition table: action -> (from statuses, to status, allowed actors).
MODEL_RULES = {
    "approve": ({"requested"}, "active", {"citizen"}),
    "deny": ({"requested"}, "denied", {"citizen"}),
    "pause": ({"active"}, "paused", {"citizen"}),
    "resume": ({"paused"}, "active", {"citizen"}),
    "revoke": ({"active", "paused"}, "revoked", {"citizen", "agency", "system"}),
}
EVENT_TYPES = {
    "approve": "consent_granted",
    "deny": "consent_denied",
    "pause": "consent_paused",
    "resume": "consent_resumed",
    "revoke": "consent_revoked",
}
# Closeness order of deny reasons, as the model understands the product rule.
CLOSENESS = [
    "no-consent",
    "consent-not-found",
    "consent-other-consumer",
    "consent-of-other-subject",
    "provider-not-covered",
    "category-not-covered",
    "purpose-mismatch",
    "denied",
    "revoked",
    "expired",
    "paused",
    "not-yet-valid",
    "already-used",
    "frequency-exhausted",
]


@dataclass
class Model:
    consumer: str
    subject: str
    categories: frozenset[str]
    purpose: str
    status: str
    created: datetime
    valid_from: datetime
    valid_until: datetime
    once: bool
    window: timedelta
    per_window: int
    uses: list[datetime] = field(default_factory=list)

    def due(self, now: datetime) -> bool:
        if self.status == "requested":
            return now >= self.created + REQUEST_TTL
        return self.status in ("active", "paused") and now >= self.valid_until

    def in_window(self, now: datetime) -> int:
        return len([u for u in self.uses if u > now - self.window])

    def usable(self, now: datetime, counted: bool = True) -> str | None:
        """Why no use is possible at ``now``; ``counted`` says whether the caller told the
        in-window count (without it, a window the lifetime uses could fill counts as full)."""
        if self.status in ("denied", "revoked", "expired"):
            return self.status
        if self.status == "requested":
            return "no-consent"
        if now >= self.valid_until:
            return "expired"
        if self.status == "paused":
            return "paused"
        if now < self.valid_from:
            return "not-yet-valid"
        if self.once and self.uses:
            return "already-used"
        if counted and self.in_window(now) >= self.per_window:
            return "frequency-exhausted"
        if not counted and len(self.uses) >= self.per_window:
            return "frequency-exhausted"
        return None

    def reason(
        self,
        consumer: str,
        subject: str,
        category: str,
        purpose: str,
        now: datetime,
        counted: bool = True,
    ) -> str | None:
        if self.consumer != consumer:
            return "consent-other-consumer"
        if self.subject != subject:
            return "consent-of-other-subject"
        if category not in self.categories:
            return "category-not-covered"
        if self.purpose != purpose:
            return "purpose-mismatch"
        return self.usable(now, counted)


def model_decision(
    models: dict[str, Model],
    consumer: str,
    subject: str,
    category: str,
    purpose: str,
    now: datetime,
    consent_id: str | None,
    uncounted: frozenset[str] = frozenset(),
) -> Permit | Deny:
    """The model's decision; ``uncounted`` are the consents the caller gave no count for."""
    if consent_id is not None:
        if consent_id not in models:
            return Deny(DenyReason("consent-not-found"), consent_id)
        counted = consent_id not in uncounted
        why = models[consent_id].reason(consumer, subject, category, purpose, now, counted)
        return Deny(DenyReason(why), consent_id) if why else Permit(consent_id=consent_id)
    for basis in LEGAL_BASES:
        if (basis.consumer, basis.category, basis.purpose) == (consumer, category, purpose):
            return Permit(legal_basis=basis.reference)
    mine = {cid: m for cid, m in models.items() if m.consumer == consumer and m.subject == subject}
    if not mine:
        return Deny(DenyReason.NO_CONSENT)
    reasons = {
        cid: m.reason(consumer, subject, category, purpose, now, cid not in uncounted)
        for cid, m in mine.items()
    }
    ok = [cid for cid, why in reasons.items() if why is None]
    if ok:
        return Permit(consent_id=min(ok, key=lambda cid: (mine[cid].valid_until, cid)))
    cid = sorted(reasons, key=lambda c: (-CLOSENESS.index(str(reasons[c])), c))[0]
    return Deny(DenyReason(str(reasons[cid])), cid)


def without_version(decision: Permit | Deny) -> Permit | Deny:
    """The model does not track version numbers; compare everything else."""
    if isinstance(decision, Permit):
        return Permit(consent_id=decision.consent_id, legal_basis=decision.legal_basis)
    return decision


frequencies = st.builds(
    Frequency, st.sampled_from(sorted(UNIT_SECONDS, key=str)), st.integers(1, 3)
)
category_sets = st.sets(st.sampled_from(CATEGORIES), min_size=1, max_size=3)
# Mostly the citizen (who may do everything), sometimes someone who may not.
actors = st.sampled_from([Actor.CITIZEN, Actor.CITIZEN, Actor.CITIZEN, Actor.AGENCY, Actor.SYSTEM])
clock_steps = st.one_of(
    st.sampled_from([1, 59, 3599, 3600, 3601, 86399, 86400, 7 * 86400, 30 * 86400]),
    st.integers(0, 2 * 86400),
)


class ConsentMachine(RuleBasedStateMachine):
    consents = Bundle("consents")

    @initialize()
    def start(self) -> None:
        self.now = T0
        self.counter = 0
        self.versions: dict[str, list[ConsentArtefact]] = {}
        self.models: dict[str, Model] = {}

    # -- helpers ------------------------------------------------------------------------

    def _new_id(self) -> str:
        self.counter += 1
        return f"c{self.counter:03d}"

    def _latest(self, cid: str) -> ConsentArtefact:
        return self.versions[cid][-1]

    def _check_event(self, event: ConsentEvent, artefact: ConsentArtefact, kind: str) -> None:
        assert event.type == kind
        assert (event.consent_id, event.version) == (artefact.consent_id, artefact.version)
        assert event.consumer == artefact.data_consumer
        assert event.principal == artefact.data_principal
        assert event.categories == artefact.categories
        assert event.purpose == artefact.purpose.code
        assert event.at == self.now

    # -- creation -----------------------------------------------------------------------

    @precondition(lambda self: len(self.models) < MAX_CONSENTS)
    @rule(
        target=consents,
        consumer=st.sampled_from(CONSUMERS),
        subject=st.sampled_from(SUBJECTS),
        categories=category_sets,
        purpose=st.sampled_from(PURPOSES),
        hours=st.integers(1, 24 * 60),
        once=st.booleans(),
        frequency=frequencies,
    )
    def request(
        self,
        consumer: str,
        subject: str,
        categories: set[str],
        purpose: str,
        hours: int,
        once: bool,
        frequency: Frequency,
    ) -> str:
        cid = self._new_id()
        artefact, event = request_consent(
            consent_id=cid,
            principal=subject,
            consumer=consumer,
            categories=sorted(categories),
            purpose=Purpose(purpose, "Para tu trámite"),
            duration=timedelta(hours=hours),
            now=self.now,
            fetch_type=FetchType.ONCE if once else FetchType.PERIODIC,
            frequency=frequency,
        )
        self._check_event(event, artefact, "consent_requested")
        assert artefact.status is Status.REQUESTED
        self.versions[cid] = [artefact]
        self.models[cid] = Model(
            consumer,
            subject,
            frozenset(categories),
            purpose,
            "requested",
            self.now,
            self.now,
            self.now + timedelta(hours=hours),
            once,
            timedelta(seconds=UNIT_SECONDS[frequency.unit]),
            frequency.value,
        )
        return cid

    @precondition(lambda self: len(self.models) < MAX_CONSENTS)
    @rule(
        target=consents,
        consumer=st.sampled_from(CONSUMERS),
        subject=st.sampled_from(SUBJECTS),
        categories=category_sets,
        purpose=st.sampled_from(PURPOSES),
        delay_hours=st.sampled_from([0, 0, 1, 48]),
        hours=st.integers(1, 24 * 60),
        once=st.booleans(),
        frequency=frequencies,
    )
    def grant(
        self,
        consumer: str,
        subject: str,
        categories: set[str],
        purpose: str,
        delay_hours: int,
        hours: int,
        once: bool,
        frequency: Frequency,
    ) -> str:
        cid = self._new_id()
        start = self.now + timedelta(hours=delay_hours)
        artefact, event = grant_consent(
            consent_id=cid,
            principal=subject,
            consumer=consumer,
            categories=sorted(categories),
            purpose=Purpose(purpose, "Para tu trámite"),
            valid_from=start,
            valid_until=start + timedelta(hours=hours),
            now=self.now,
            fetch_type=FetchType.ONCE if once else FetchType.PERIODIC,
            frequency=frequency,
        )
        self._check_event(event, artefact, "consent_granted")
        self.versions[cid] = [artefact]
        self.models[cid] = Model(
            consumer,
            subject,
            frozenset(categories),
            purpose,
            "active",
            self.now,
            start,
            start + timedelta(hours=hours),
            once,
            timedelta(seconds=UNIT_SECONDS[frequency.unit]),
            frequency.value,
        )
        return cid

    # -- status changes -----------------------------------------------------------------

    @rule(cid=consents, action=st.sampled_from(sorted(ACTIONS)), actor=actors)
    def act(self, cid: str, action: str, actor: Actor) -> None:
        model = self.models[cid]
        sources, target, actors = MODEL_RULES[action]
        if actor.value not in actors:
            expected: str | None = "consent-actor-not-allowed"
        elif model.status not in sources:
            expected = "consent-transition-not-allowed"
        elif model.due(self.now):
            expected = "consent-expired"
        else:
            expected = None
        before = self._latest(cid)
        observe(f"{action}: {expected or 'ok'}")
        if expected is not None:
            with pytest.raises(ConsentTransitionError) as caught:
                ACTIONS[action](before, actor, self.now)
            assert caught.value.slug == expected
            assert caught.value.status == (403 if expected == "consent-actor-not-allowed" else 409)
            return
        artefact, event = ACTIONS[action](before, actor, self.now, "motivo")
        self._check_event(event, artefact, EVENT_TYPES[action])
        assert event.by is actor
        self.versions[cid].append(artefact)
        if action == "approve" and model.valid_from < self.now:
            length = model.valid_until - model.valid_from
            model.valid_from, model.valid_until = self.now, self.now + length
        model.status = target

    @rule(step=clock_steps)
    def advance_clock(self, step: int) -> None:
        self.now += timedelta(seconds=step)

    @rule(cid=consents)
    def expire(self, cid: str) -> None:
        model = self.models[cid]
        outcome = expire_if_due(self._latest(cid), self.now)
        if not model.due(self.now):
            assert outcome is None
            return
        assert outcome is not None
        self._check_event(outcome.event, outcome.artefact, "consent_expired")
        assert outcome.event.by is Actor.SYSTEM
        self.versions[cid].append(outcome.artefact)
        model.status = "expired"

    def _recent_uses(self, uncounted: frozenset[str] = frozenset()) -> dict[str, int]:
        return {
            cid: model.in_window(self.now)
            for cid, model in self.models.items()
            if cid not in uncounted
        }

    @rule(cid=consents, counted=st.sampled_from([True, True, True, False]))
    def use(self, cid: str, counted: bool) -> None:
        model = self.models[cid]
        expected = model.usable(self.now, counted)
        recent = model.in_window(self.now) if counted else None
        observe(f"use{'' if counted else ' uncounted'}: {expected or 'ok'}")
        before = self._latest(cid)
        if expected is not None:
            with pytest.raises(ConsentUseRefused) as caught:
                record_use(before, self.now, recent)
            assert caught.value.reason == expected
            assert (caught.value.slug, caught.value.status) == ("consent-required", 403)
            return
        artefact = record_use(before, self.now, recent)
        # The same version with its counters moved on: no new version, same digest.
        assert (artefact.version, artefact.predecessor_hash) == (
            before.version,
            before.predecessor_hash,
        )
        assert artefact.digest() == before.digest()
        assert artefact.history == before.history
        assert (artefact.use_count, artefact.last_used_at) == (before.use_count + 1, self.now)
        self.versions[cid][-1] = artefact
        model.uses.append(self.now)

    # -- decisions ----------------------------------------------------------------------

    @rule(
        consumer=st.sampled_from(CONSUMERS),
        subject=st.sampled_from(SUBJECTS),
        category=st.sampled_from(CATEGORIES),
        purpose=st.sampled_from(PURPOSES),
        which=st.one_of(st.none(), st.just("c999"), consents),
        uncounted=st.just(frozenset[str]())
        | st.frozensets(st.sampled_from([f"c{n:03d}" for n in range(1, MAX_CONSENTS + 1)])),
    )
    def data_request(
        self,
        consumer: str,
        subject: str,
        category: str,
        purpose: str,
        which: str | None,
        uncounted: frozenset[str],
    ) -> None:
        everything = [a for chain in self.versions.values() for a in chain]
        args = (consumer, subject, category, purpose, self.now, which)
        got = decide(everything, LEGAL_BASES, *args, recent_uses=self._recent_uses(uncounted))
        want = model_decision(self.models, *args, uncounted=uncounted)
        assert without_version(got) == want
        observe(f"decide: {getattr(got, 'reason', 'permit')}")
        if isinstance(got, Permit) and got.consent_id is not None:
            assert got.version == self._latest(got.consent_id).version

    @precondition(lambda self: bool(self.models))
    @invariant()
    def each_consent_decides_like_the_model(self) -> None:
        latest = [chain[-1] for chain in self.versions.values()]
        for cid, model in self.models.items():
            category = min(model.categories)
            args = (model.consumer, model.subject, category, model.purpose, self.now)
            got = decide(latest, [], *args, consent_id=cid, recent_uses=self._recent_uses())
            assert without_version(got) == model_decision(self.models, *args, consent_id=cid)

    @invariant()
    def chains_verify_and_history_only_grows(self) -> None:
        for cid, chain in self.versions.items():
            assert chain_problems(chain) == ()
            last = chain[-1]
            assert [a.version for a in chain] == list(range(1, len(chain) + 1))
            times = [entry.at for entry in last.history]
            assert times == sorted(times)
            assert times[-1] <= self.now
            assert last.status.value == self.models[cid].status
            uses = self.models[cid].uses
            assert last.use_count == len(uses)
            assert last.last_used_at == (uses[-1] if uses else None)


ConsentMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=50)
TestConsentMachine = ConsentMachine.TestCase
