"""Release decisions: total, deterministic, never permissive where they must refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from consent.artefact import (
    AccessMode,
    Actor,
    ConsentArtefact,
    FetchType,
    HistoryEntry,
    Purpose,
    Status,
)
from consent.decision import Deny, DenyReason, LegalBasis, Permit, decide
from consent.machine import pause, record_use, revoke
from consent.periods import DataLife, Frequency, TimeUnit, shift

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
CONSUMERS = ["sat", "imss"]
SUBJECTS = ["ana", "beto"]
CATEGORIES = ["a", "b", "c"]
PURPOSES = ["p1", "p2"]
PROVIDERS = ["any", "renapo"]
FIXED = {TimeUnit.HOUR: 3600, TimeUnit.DAY: 86400, TimeUnit.WEEK: 7 * 86400}

near = st.integers(-20 * 86400, 20 * 86400).map(lambda s: T0 + timedelta(seconds=s))


def consent(
    *,
    consent_id: str = "c1",
    status: Status = Status.ACTIVE,
    consumer: str = "sat",
    subject: str = "ana",
    categories: tuple[str, ...] = ("a",),
    purpose: str = "p1",
    provider: str = "any",
    valid_from: datetime = T0 - timedelta(days=1),
    valid_until: datetime = T0 + timedelta(days=30),
    fetch_type: FetchType = FetchType.PERIODIC,
    frequency: Frequency | None = None,
    uses: tuple[datetime, ...] = (),
    use_count: int | None = None,
    version: int = 1,
) -> ConsentArtefact:
    count = len(uses) if use_count is None else use_count
    return ConsentArtefact(
        consent_id=consent_id,
        version=version,
        predecessor_hash=None if version == 1 else "0" * 64,
        created_at=valid_from - timedelta(days=1),
        data_principal=subject,
        data_consumer=consumer,
        data_provider=provider,
        categories=categories,
        purpose=Purpose(purpose, "Para tu trámite"),
        legal_basis="consent",
        access_mode=AccessMode.VIEW,
        fetch_type=fetch_type,
        frequency=frequency or Frequency(TimeUnit.DAY, 1),
        data_life=DataLife(TimeUnit.DAY, 0),
        valid_from=valid_from,
        valid_until=valid_until,
        status=status,
        history=(HistoryEntry(status, valid_from - timedelta(days=1), Actor.CITIZEN),),
        use_count=count,
        last_used_at=uses[-1] if uses else (T0 - timedelta(days=400) if count else None),
        uses=uses,
    )


@st.composite
def artefacts(draw: st.DrawFn, ids: tuple[str, ...] = ("c1", "c2", "c3")) -> ConsentArtefact:
    valid_from = draw(near)
    fetch = draw(st.sampled_from(FetchType))
    frequency = Frequency(draw(st.sampled_from(TimeUnit)), draw(st.integers(1, 3)))
    limit = 1 if fetch is FetchType.ONCE else frequency.value
    uses = tuple(sorted(draw(st.lists(near, max_size=limit))))
    return consent(
        consent_id=draw(st.sampled_from(ids)),
        status=draw(st.sampled_from(Status)),
        consumer=draw(st.sampled_from(CONSUMERS)),
        subject=draw(st.sampled_from(SUBJECTS)),
        categories=tuple(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1))),
        purpose=draw(st.sampled_from(PURPOSES)),
        provider=draw(st.sampled_from(PROVIDERS)),
        valid_from=valid_from,
        valid_until=valid_from + timedelta(seconds=draw(st.integers(1, 30 * 86400))),
        fetch_type=fetch,
        frequency=frequency,
        uses=uses,
        use_count=len(uses) if uses or fetch is FetchType.ONCE else draw(st.integers(0, 3)),
        version=draw(st.integers(1, 3)),
    )


queries = st.fixed_dictionaries(
    {
        "consumer": st.sampled_from(CONSUMERS),
        "subject": st.sampled_from(SUBJECTS),
        "category": st.sampled_from(CATEGORIES),
        "purpose": st.sampled_from(PURPOSES),
        "now": near,
        "provider": st.sampled_from([None, "renapo", "sat"]),
    }
)
legal_bases = st.lists(
    st.builds(
        LegalBasis,
        st.sampled_from(CONSUMERS),
        st.sampled_from(CATEGORIES),
        st.sampled_from(PURPOSES),
        st.sampled_from(["Art. 1", "Art. 2"]),
    ),
    max_size=2,
)
any_text = st.text(max_size=8)
any_instant = st.datetimes(
    timezones=st.sampled_from(
        [None, UTC, timezone(timedelta(hours=-12)), timezone(timedelta(hours=14))]
    )
)


@given(
    consents=st.lists(artefacts(), max_size=5),
    bases=st.lists(st.builds(LegalBasis, any_text, any_text, any_text, any_text), max_size=3),
    consumer=st.one_of(st.sampled_from(CONSUMERS), any_text),
    subject=st.one_of(st.sampled_from(SUBJECTS), any_text),
    category=st.one_of(st.sampled_from(CATEGORIES), any_text),
    purpose=st.one_of(st.sampled_from(PURPOSES), any_text),
    now=any_instant,
    consent_id=st.one_of(st.none(), st.sampled_from(["c1", "c2", "zz"]), any_text),
    provider=st.one_of(st.none(), st.sampled_from(PROVIDERS), any_text),
)
def test_decide_is_total_and_deterministic(
    consents: list[ConsentArtefact],
    bases: list[LegalBasis],
    consumer: str,
    subject: str,
    category: str,
    purpose: str,
    now: datetime,
    consent_id: str | None,
    provider: str | None,
) -> None:
    args = (consumer, subject, category, purpose, now, consent_id, provider)
    outcome = decide(consents, bases, *args)
    assert isinstance(outcome, Permit | Deny)
    assert decide(reversed(consents), reversed(bases), *args) == outcome
    assert decide(iter(consents), iter(bases), *args) == outcome
    if isinstance(outcome, Permit):
        assert (outcome.consent_id is None) != (outcome.legal_basis is None)
    else:
        assert isinstance(outcome.reason, DenyReason)


def _window_count(artefact: ConsentArtefact, now: datetime) -> int:
    start = shift(now, artefact.frequency.unit, -1)
    return len([u for u in artefact.uses if u > start])


@given(consents=st.lists(artefacts(), min_size=1, max_size=4), query=queries, pick=st.booleans())
def test_a_consent_permit_is_always_backed_by_a_live_matching_consent(
    consents: list[ConsentArtefact], query: dict[str, object], pick: bool
) -> None:
    consent_id = consents[0].consent_id if pick else None
    outcome = decide(consents, [], consent_id=consent_id, **query)  # type: ignore[arg-type]
    if isinstance(outcome, Deny):
        return
    chosen = max(
        (a for a in consents if a.consent_id == outcome.consent_id), key=lambda a: a.version
    )
    now = query["now"]
    assert isinstance(now, datetime)
    assert outcome.version == chosen.version
    assert chosen.status is Status.ACTIVE
    assert chosen.data_consumer == query["consumer"]
    assert chosen.data_principal == query["subject"]
    assert query["category"] in chosen.categories
    assert chosen.purpose.code == query["purpose"]
    assert chosen.data_provider in ("any", query["provider"])
    assert chosen.valid_from <= now < chosen.valid_until
    assert not (chosen.fetch_type is FetchType.ONCE and chosen.use_count > 0)
    assert _window_count(chosen, now) < chosen.frequency.value


@pytest.mark.parametrize("status", [Status.PAUSED, Status.REVOKED, Status.EXPIRED, Status.DENIED])
@given(now=near)
def test_stopped_consents_never_permit(status: Status, now: datetime) -> None:
    artefact = consent(status=status)
    for consent_id in (None, "c1"):
        outcome = decide([artefact], [], "sat", "ana", "a", "p1", now, consent_id)
        assert isinstance(outcome, Deny)
        if status is Status.PAUSED and now >= artefact.valid_until:
            assert outcome.reason is DenyReason.EXPIRED
        else:
            assert outcome.reason.value == status.value
        assert outcome.consent_id == "c1"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"consumer": "imss"}, DenyReason.CONSENT_OTHER_CONSUMER),
        ({"subject": "beto"}, DenyReason.CONSENT_OF_OTHER_SUBJECT),
        ({"category": "b"}, DenyReason.CATEGORY_NOT_COVERED),
        ({"purpose": "p2"}, DenyReason.PURPOSE_MISMATCH),
        ({"consent_id": "nope"}, DenyReason.CONSENT_NOT_FOUND),
    ],
)
def test_a_named_consent_answers_with_its_own_reason(
    query: dict[str, str], reason: DenyReason
) -> None:
    base = {"consumer": "sat", "subject": "ana", "category": "a", "purpose": "p1"}
    args = {**base, "consent_id": "c1", **query}
    outcome = decide([consent()], [], now=T0, **args)
    assert outcome == Deny(reason, args["consent_id"])


def test_without_a_consent_id_other_parties_consents_stay_invisible() -> None:
    theirs = [consent(consumer="imss"), consent(consent_id="c2", subject="beto")]
    assert decide(theirs, [], "sat", "ana", "a", "p1", T0) == Deny(DenyReason.NO_CONSENT)


def test_the_closest_consent_explains_the_refusal() -> None:
    consents = [
        consent(consent_id="c1", categories=("b",)),
        consent(consent_id="c2", status=Status.PAUSED),
        consent(consent_id="c3", status=Status.REVOKED),
    ]
    assert decide(consents, [], "sat", "ana", "a", "p1", T0) == Deny(DenyReason.PAUSED, "c2")


def test_a_pending_request_is_not_consent() -> None:
    outcome = decide([consent(status=Status.REQUESTED)], [], "sat", "ana", "a", "p1", T0)
    assert outcome == Deny(DenyReason.NO_CONSENT, "c1")


def test_validity_window_is_half_open() -> None:
    artefact = consent(valid_from=T0, valid_until=T0 + timedelta(days=1))
    args = ("sat", "ana", "a", "p1")
    before = decide([artefact], [], *args, T0 - timedelta(seconds=1))
    assert before == Deny(DenyReason.NOT_YET_VALID, "c1")
    assert decide([artefact], [], *args, T0) == Permit("c1", 1)
    last = decide([artefact], [], *args, T0 + timedelta(days=1, seconds=-1))
    assert last == Permit("c1", 1)
    assert decide([artefact], [], *args, T0 + timedelta(days=1)) == Deny(DenyReason.EXPIRED, "c1")


def test_once_means_once() -> None:
    fresh = consent(fetch_type=FetchType.ONCE)
    used = record_use(fresh, T0)
    assert decide([fresh], [], "sat", "ana", "a", "p1", T0) == Permit("c1", 1)
    later = T0 + timedelta(days=10)
    assert decide([used], [], "sat", "ana", "a", "p1", later) == Deny(DenyReason.ALREADY_USED, "c1")


@pytest.mark.parametrize("unit", list(FIXED))
@given(offset=st.integers(0, 10 * 86400), value=st.integers(1, 3))
def test_frequency_windows_honour_their_boundaries(unit: TimeUnit, offset: int, value: int) -> None:
    used_at = T0 + timedelta(seconds=offset)
    artefact = consent(
        frequency=Frequency(unit, value),
        uses=(used_at,) * value,
        valid_until=T0 + timedelta(days=400),
    )
    args = ("sat", "ana", "a", "p1")
    edge = used_at + timedelta(seconds=FIXED[unit])
    exhausted = decide([artefact], [], *args, edge - timedelta(seconds=1))
    assert exhausted == Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    assert decide([artefact], [], *args, edge) == Permit("c1", 1)


@pytest.mark.parametrize(
    ("unit", "used_at", "last_refused"),
    [
        (TimeUnit.MONTH, datetime(2025, 1, 15, 10), datetime(2025, 2, 15, 9, 59, 59)),
        # A month back from any instant of 28 February is still in January: the use on the
        # 31st leaves the window when March begins.
        (TimeUnit.MONTH, datetime(2025, 1, 31, 10), datetime(2025, 2, 28, 23, 59, 59)),
        (TimeUnit.YEAR, datetime(2024, 2, 29, 12), datetime(2025, 2, 28, 23, 59, 59)),
        (TimeUnit.YEAR, datetime(2024, 6, 1), datetime(2025, 5, 31, 23, 59, 59)),
    ],
)
def test_calendar_windows_at_month_and_year_ends(
    unit: TimeUnit, used_at: datetime, last_refused: datetime
) -> None:
    used_at, last_refused = used_at.replace(tzinfo=UTC), last_refused.replace(tzinfo=UTC)
    artefact = consent(
        frequency=Frequency(unit, 1),
        uses=(used_at,),
        valid_from=used_at - timedelta(days=1),
        valid_until=used_at + timedelta(days=800),
    )
    args = ("sat", "ana", "a", "p1")
    refused = decide([artefact], [], *args, last_refused)
    assert refused == Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    allowed = decide([artefact], [], *args, last_refused + timedelta(seconds=1))
    assert allowed == Permit("c1", 1)


@given(artefact=artefacts(ids=("c1",)), first=near, later=st.integers(0, 40 * 86400))
def test_a_permit_stays_a_permit_until_the_consent_changes_or_lapses(
    artefact: ConsentArtefact, first: datetime, later: int
) -> None:
    args = (artefact.data_consumer, artefact.data_principal, artefact.categories[0])
    purpose = artefact.purpose.code
    second = first + timedelta(seconds=later)
    assume(second < artefact.valid_until)
    if isinstance(decide([artefact], [], *args, purpose, first, provider="renapo"), Permit):
        assert isinstance(decide([artefact], [], *args, purpose, second, provider="renapo"), Permit)


def test_a_legal_basis_wins_unless_a_consent_is_named() -> None:
    live = consent()
    bases = [
        LegalBasis("sat", "a", "p1", "Art. 9 CFF"),
        LegalBasis("sat", "a", "p1", "Art. 10 CFF"),
        LegalBasis("imss", "a", "p1", "Art. 1 LSS"),
    ]
    args = ("sat", "ana", "a", "p1", T0)
    assert decide([live], bases, *args) == Permit(legal_basis="Art. 10 CFF")
    assert decide([], bases, *args) == Permit(legal_basis="Art. 10 CFF")
    assert decide([live], bases, *args, consent_id="c1") == Permit("c1", 1)
    revoked = revoke(live, Actor.CITIZEN, T0).artefact
    assert decide([live, revoked], bases, *args, consent_id="c1") == Deny(DenyReason.REVOKED, "c1")
    assert decide([live], bases, "sat", "ana", "b", "p1", T0) == Deny(
        DenyReason.CATEGORY_NOT_COVERED, "c1"
    )


def test_the_newest_version_is_the_one_decided_on() -> None:
    v1 = consent()
    v2 = pause(v1, Actor.CITIZEN, T0).artefact
    for history in ([v1, v2], [v2, v1]):
        assert decide(history, [], "sat", "ana", "a", "p1", T0) == Deny(DenyReason.PAUSED, "c1")


def test_the_consent_lapsing_first_is_spent_first() -> None:
    longer = consent(consent_id="a-long", valid_until=T0 + timedelta(days=60))
    shorter = consent(consent_id="z-short", valid_until=T0 + timedelta(days=2))
    assert decide([longer, shorter], [], "sat", "ana", "a", "p1", T0) == Permit("z-short", 1)


def test_named_providers_cover_only_themselves() -> None:
    renapo = consent(provider="renapo")
    args = ("sat", "ana", "a", "p1", T0)
    assert decide([renapo], [], *args, provider="renapo") == Permit("c1", 1)
    assert decide([renapo], [], *args, provider="imss") == Deny(
        DenyReason.PROVIDER_NOT_COVERED, "c1"
    )
    assert decide([renapo], [], *args) == Deny(DenyReason.PROVIDER_NOT_COVERED, "c1")
    assert decide([consent()], [], *args, provider="imss") == Permit("c1", 1)


def test_every_reason_has_spanish_text() -> None:
    for reason in DenyReason:
        assert reason.text.endswith(".")
