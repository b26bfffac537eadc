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
from consent.decision import (
    Deny,
    DenyReason,
    LegalBasis,
    Permit,
    decide,
    evaluate,
    needs_window_count,
    usability,
)
from consent.machine import pause, record_use, revoke
from consent.periods import DataLife, Frequency, TimeUnit

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
CONSUMERS = ["sat", "imss"]
SUBJECTS = ["ana", "beto"]
CATEGORIES = ["a", "b", "c"]
PURPOSES = ["p1", "p2"]
PROVIDERS = ["any", "renapo"]
FIXED = {TimeUnit.HOUR: 3600, TimeUnit.DAY: 86400, TimeUnit.WEEK: 7 * 86400}

near = st.integers(-20 * 86400, 20 * 86400).map(lambda s: T0 + timedelta(seconds=s))
# Beyond any frequency window (a year at most) of any instant in ``near``.
long_ago = st.integers(400 * 86400, 800 * 86400).map(lambda s: T0 - timedelta(seconds=s))
#: A consent with the caller's log of its uses (the artefact only keeps the counters).
Logged = tuple[ConsentArtefact, tuple[datetime, ...]]


def in_window(log: tuple[datetime, ...], frequency: Frequency, now: datetime) -> int:
    """What the caller counts from the use log: uses strictly after the window's start."""
    return len([u for u in log if u > frequency.window_start(now)])


def window_counts(logged: list[Logged], now: datetime) -> dict[str, int]:
    """The in-window count of every consent's newest version (``consent_id``s unique per
    version in the lists this is used with)."""
    newest: dict[str, Logged] = {}
    for artefact, log in logged:
        held = newest.get(artefact.consent_id)
        if held is None or artefact.version > held[0].version:
            newest[artefact.consent_id] = (artefact, log)
    return {cid: in_window(log, a.frequency, now) for cid, (a, log) in newest.items()}


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
    """A consent; ``uses`` is its use log, which sets the counters unless ``use_count`` is
    given (uses older than the log then have no timestamp)."""
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
        last_used_at=max(uses) if uses else (T0 - timedelta(days=400) if count else None),
    )


IDS = ("c1", "c2", "c3")


@st.composite
def logged_artefacts(draw: st.DrawFn, ids: tuple[str, ...] = IDS) -> Logged:
    """A consent of any status and its full use log (so ``use_count == len(log)``)."""
    valid_from = draw(near)
    fetch = draw(st.sampled_from(FetchType))
    frequency = Frequency(draw(st.sampled_from(TimeUnit)), draw(st.integers(1, 3)))
    limit = 1 if fetch is FetchType.ONCE else frequency.value + 2
    uses = tuple(sorted(draw(st.lists(near | long_ago, max_size=limit))))
    artefact = consent(
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
        version=draw(st.integers(1, 3)),
    )
    return artefact, uses


def artefacts(ids: tuple[str, ...] = IDS) -> st.SearchStrategy[ConsentArtefact]:
    return logged_artefacts(ids).map(lambda logged: logged[0])


def histories(min_size: int = 0) -> st.SearchStrategy[list[Logged]]:
    """Several consents, possibly several versions of one, never two copies of a version."""
    return st.lists(
        logged_artefacts(),
        min_size=min_size,
        max_size=4,
        unique_by=lambda logged: (logged[0].consent_id, logged[0].version),
    )


recent_maps = st.none() | st.dictionaries(
    st.sampled_from([*IDS, "zz"]) | st.text(max_size=4), st.integers(0, 5), max_size=4
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
    recent=recent_maps,
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
    recent: dict[str, int] | None,
) -> None:
    args = (consumer, subject, category, purpose, now, consent_id, provider, recent)
    outcome = decide(consents, bases, *args)
    assert isinstance(outcome, Permit | Deny)
    assert decide(reversed(consents), reversed(bases), *args) == outcome
    assert decide(iter(consents), iter(bases), *args) == outcome
    if isinstance(outcome, Permit):
        assert (outcome.consent_id is None) != (outcome.legal_basis is None)
    else:
        assert isinstance(outcome.reason, DenyReason)


@given(
    logged=histories(min_size=1),
    query=queries,
    pick=st.booleans(),
    forget=st.sets(st.sampled_from(IDS)),
)
def test_a_consent_permit_is_always_backed_by_a_live_matching_consent(
    logged: list[Logged], query: dict[str, object], pick: bool, forget: set[str]
) -> None:
    consents = [artefact for artefact, _ in logged]
    now = query["now"]
    assert isinstance(now, datetime)
    # The caller counted the window of every consent but, sometimes, forgot some.
    recent = {cid: n for cid, n in window_counts(logged, now).items() if cid not in forget}
    consent_id = consents[0].consent_id if pick else None
    outcome = decide(consents, [], consent_id=consent_id, recent_uses=recent, **query)  # type: ignore[arg-type]
    if isinstance(outcome, Deny):
        return
    chosen, log = max(
        ((a, log) for a, log in logged if a.consent_id == outcome.consent_id),
        key=lambda pair: pair[0].version,
    )
    assert outcome.version == chosen.version
    assert chosen.status is Status.ACTIVE
    assert chosen.data_consumer == query["consumer"]
    assert chosen.data_principal == query["subject"]
    assert query["category"] in chosen.categories
    assert chosen.purpose.code == query["purpose"]
    assert chosen.data_provider in ("any", query["provider"])
    assert chosen.valid_from <= now < chosen.valid_until
    assert not (chosen.fetch_type is FetchType.ONCE and chosen.use_count > 0)
    assert in_window(log, chosen.frequency, now) < chosen.frequency.value
    if needs_window_count(chosen):
        assert chosen.consent_id not in forget  # a missing count never permits


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
    consumer, subject, category, purpose, consent_id = (
        args[k] for k in ("consumer", "subject", "category", "purpose", "consent_id")
    )
    outcome = decide([consent()], [], consumer, subject, category, purpose, T0, consent_id)
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
    refused = Deny(DenyReason.ALREADY_USED, "c1")
    assert decide([used], [], "sat", "ana", "a", "p1", later) == refused
    # Whatever the window count says: a once consent is spent by its lifetime use.
    assert decide([used], [], "sat", "ana", "a", "p1", later, recent_uses={"c1": 0}) == refused


@pytest.mark.parametrize("unit", list(FIXED))
@given(offset=st.integers(0, 10 * 86400), value=st.integers(1, 3))
def test_frequency_windows_honour_their_boundaries(unit: TimeUnit, offset: int, value: int) -> None:
    used_at = T0 + timedelta(seconds=offset)
    log = (used_at,) * value
    artefact = consent(
        frequency=Frequency(unit, value), uses=log, valid_until=T0 + timedelta(days=400)
    )
    args = ("sat", "ana", "a", "p1")
    edge = used_at + timedelta(seconds=FIXED[unit])
    inside = edge - timedelta(seconds=1)
    assert in_window(log, artefact.frequency, inside) == value
    assert in_window(log, artefact.frequency, edge) == 0
    exhausted = Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    assert decide([artefact], [], *args, inside, recent_uses={"c1": value}) == exhausted
    assert decide([artefact], [], *args, edge, recent_uses={"c1": 0}) == Permit("c1", 1)
    assert decide([artefact], [], *args, edge) == exhausted  # uncounted: fail closed


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
    frequency = Frequency(unit, 1)
    artefact = consent(
        frequency=frequency,
        uses=(used_at,),
        valid_from=used_at - timedelta(days=1),
        valid_until=used_at + timedelta(days=800),
    )
    args = ("sat", "ana", "a", "p1")
    first_allowed = last_refused + timedelta(seconds=1)
    counts = {
        now: {"c1": in_window((used_at,), frequency, now)} for now in (last_refused, first_allowed)
    }
    assert counts == {last_refused: {"c1": 1}, first_allowed: {"c1": 0}}
    refused = decide([artefact], [], *args, last_refused, recent_uses=counts[last_refused])
    assert refused == Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    allowed = decide([artefact], [], *args, first_allowed, recent_uses=counts[first_allowed])
    assert allowed == Permit("c1", 1)


@given(logged=logged_artefacts(ids=("c1",)), first=near, later=st.integers(0, 40 * 86400))
def test_a_permit_stays_a_permit_until_the_consent_changes_or_lapses(
    logged: Logged, first: datetime, later: int
) -> None:
    artefact, log = logged
    args = (artefact.data_consumer, artefact.data_principal, artefact.categories[0])
    purpose = artefact.purpose.code
    second = first + timedelta(seconds=later)
    assume(second < artefact.valid_until)

    def at(now: datetime) -> Permit | Deny:
        recent = {"c1": in_window(log, artefact.frequency, now)}
        return decide([artefact], [], *args, purpose, now, provider="renapo", recent_uses=recent)

    if isinstance(at(first), Permit):
        assert isinstance(at(second), Permit)


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


def test_a_consent_needing_the_window_count_fails_closed_without_it() -> None:
    spent = consent(frequency=Frequency(TimeUnit.DAY, 2), use_count=2)
    assert needs_window_count(spent)
    args = ("sat", "ana", "a", "p1", T0)
    exhausted = Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    for consent_id in (None, "c1"):
        for recent in (None, {}, {"c2": 0}, {"c1": 2}, {"c1": 3}):
            assert decide([spent], [], *args, consent_id, recent_uses=recent) == exhausted
        for count in (0, 1):
            assert decide([spent], [], *args, consent_id, recent_uses={"c1": count}) == Permit(
                "c1", 1
            )
    assert usability(spent, T0) is DenyReason.FREQUENCY_EXHAUSTED
    assert usability(spent, T0, 1) is None
    assert evaluate(spent, "sat", "ana", "a", "p1", T0) is DenyReason.FREQUENCY_EXHAUSTED
    assert evaluate(spent, "sat", "ana", "a", "p1", T0, recent_uses=1) is None
    # Another consent that needs no count is used instead of the uncounted one.
    fresh = consent(consent_id="c2", frequency=Frequency(TimeUnit.DAY, 2), use_count=1)
    assert not needs_window_count(fresh)
    assert decide([spent, fresh], [], *args) == Permit("c2", 1)
    assert decide([spent, fresh], [], *args, recent_uses={"c1": 0}) == Permit("c1", 1)


def test_record_use_and_decide_agree_on_the_count() -> None:
    artefact = consent(frequency=Frequency(TimeUnit.HOUR, 1))
    log: tuple[datetime, ...] = ()
    for minutes in (0, 59, 60, 61, 120):
        now = T0 + timedelta(minutes=minutes)
        recent = in_window(log, artefact.frequency, now)
        outcome = decide([artefact], [], "sat", "ana", "a", "p1", now, recent_uses={"c1": recent})
        if isinstance(outcome, Permit):
            artefact = record_use(artefact, now, recent)
            log += (now,)
        else:
            assert outcome == Deny(DenyReason.FREQUENCY_EXHAUSTED, "c1")
    assert log == (T0, T0 + timedelta(minutes=60), T0 + timedelta(minutes=120))
    assert (artefact.use_count, artefact.last_used_at, artefact.version) == (3, log[-1], 1)


@given(artefact=artefacts(), now=near, recent=st.none() | st.integers(0, 6))
def test_the_frequency_rule_in_full(
    artefact: ConsentArtefact, now: datetime, recent: int | None
) -> None:
    assert needs_window_count(artefact) == (artefact.use_count >= artefact.frequency.value)
    # With no use in the window the frequency never refuses: every other reason remains.
    others = usability(artefact, now, 0)
    assert others is not DenyReason.FREQUENCY_EXHAUSTED
    full = recent is None or recent >= artefact.frequency.value
    if others is not None:
        expected: DenyReason | None = others
    elif needs_window_count(artefact) and full:
        expected = DenyReason.FREQUENCY_EXHAUSTED
    else:
        expected = None
    assert usability(artefact, now, recent) is expected
    if not needs_window_count(artefact):
        assert usability(artefact, now, recent) is usability(artefact, now, None)


@given(
    logged=histories(),
    bases=legal_bases,
    query=queries,
    consent_id=st.none() | st.sampled_from([*IDS, "zz"]),
    recent=recent_maps,
)
def test_window_counts_matter_only_for_consents_that_need_them(
    logged: list[Logged],
    bases: list[LegalBasis],
    query: dict[str, object],
    consent_id: str | None,
    recent: dict[str, int] | None,
) -> None:
    consents = [artefact for artefact, _ in logged]
    newest: dict[str, ConsentArtefact] = {}
    for artefact in sorted(consents, key=lambda a: a.version):
        newest[artefact.consent_id] = artefact
    needing = {cid for cid, artefact in newest.items() if needs_window_count(artefact)}
    relevant = {cid: n for cid, n in (recent or {}).items() if cid in needing}
    outcome = decide(consents, bases, consent_id=consent_id, recent_uses=recent, **query)  # type: ignore[arg-type]
    assert decide(consents, bases, consent_id=consent_id, recent_uses=relevant, **query) == outcome  # type: ignore[arg-type]
    if not needing:
        assert decide(consents, bases, consent_id=consent_id, **query) == outcome  # type: ignore[arg-type]


def test_a_stale_copy_of_a_used_version_never_outvotes_the_used_one() -> None:
    """A use keeps the version and the digest, so a history may hold the same version twice:
    before and after the use. The more used copy is the newer state, in any order."""
    fresh = consent(fetch_type=FetchType.ONCE)
    used = record_use(fresh, T0)
    args = ("sat", "ana", "a", "p1", T0 + timedelta(minutes=1))
    assert used.digest() == fresh.digest()
    assert decide([fresh, used], [], *args) == Deny(DenyReason.ALREADY_USED, "c1")
    assert decide([used, fresh], [], *args) == Deny(DenyReason.ALREADY_USED, "c1")
