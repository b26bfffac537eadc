"""The consent artefact: invariants, canonical encoding, digest and version chain."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.artefact import (
    LIVE_FIELDS,
    AccessMode,
    Actor,
    ConsentArtefact,
    FetchType,
    HistoryEntry,
    LedgerAnchor,
    Purpose,
    Status,
    chain_problems,
    digest_of,
)
from consent.errors import ConsentInvalid
from consent.machine import approve, grant_consent, pause, record_use, request_consent, resume
from consent.periods import DataLife, Frequency, TimeUnit, as_utc, rfc3339, shift

T0 = datetime(2025, 5, 10, 8, 30, tzinfo=UTC)
RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def granted(**overrides: object) -> ConsentArtefact:
    fields: dict[str, object] = {
        "consent_id": "c-1",
        "principal": "cit-7f3a",
        "consumer": "imss",
        "categories": ["nss_imss", "acta_nacimiento"],
        "purpose": Purpose("alta", "Darte de alta en el IMSS sin papeles"),
        "valid_until": T0 + timedelta(days=90),
        "now": T0,
        "fetch_type": FetchType.PERIODIC,
        "frequency": Frequency(TimeUnit.DAY, 2),
    }
    fields.update(overrides)
    return grant_consent(**fields).artefact  # type: ignore[arg-type]


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
texts = st.text(min_size=1, max_size=20).filter(str.strip)


def usages(fetch: FetchType) -> st.SearchStrategy[tuple[int, datetime | None]]:
    """Consistent live counters: a last use exactly when there was a use, ``once`` at most one."""
    counts = st.integers(1, 1 if fetch is FetchType.ONCE else 10**6)
    return st.just((0, None)) | st.tuples(counts, instants)


@st.composite
def artefacts(draw: st.DrawFn) -> ConsentArtefact:
    """Well-formed artefacts of every status, built straight from the constructor."""
    created = draw(instants)
    valid_from = created + timedelta(seconds=draw(st.integers(-86400, 86400 * 3)))
    valid_until = valid_from + timedelta(seconds=draw(st.integers(1, 86400 * 400)))
    fetch = draw(st.sampled_from(FetchType))
    frequency = Frequency(draw(st.sampled_from(TimeUnit)), draw(st.integers(1, 3)))
    use_count, last = draw(usages(fetch))
    status = draw(st.sampled_from(Status))
    return ConsentArtefact(
        consent_id=draw(texts),
        version=1,
        predecessor_hash=None,
        created_at=created,
        data_principal=draw(st.sampled_from(["cit-1", "cit-2", "ciudadano-ñandú"])),
        data_consumer=draw(st.sampled_from(["sat", "imss"])),
        data_provider=draw(st.sampled_from(["any", "renapo"])),
        categories=tuple(draw(st.sets(texts, min_size=1, max_size=3))),
        purpose=Purpose(draw(texts), draw(texts)),
        legal_basis="consent",
        access_mode=draw(st.sampled_from(AccessMode)),
        fetch_type=fetch,
        frequency=frequency,
        data_life=DataLife(draw(st.sampled_from(TimeUnit)), draw(st.integers(0, 10))),
        valid_from=valid_from,
        valid_until=valid_until,
        status=status,
        history=(HistoryEntry(status, created, draw(st.sampled_from(Actor)), None),),
        use_count=use_count,
        last_used_at=last,
        ledger_anchor=draw(st.none() | st.builds(LedgerAnchor, st.integers(0, 10**9))),
    )


@given(artefacts())
def test_canonical_form_round_trips_exactly(artefact: ConsentArtefact) -> None:
    encoded = artefact.canonical_bytes()
    assert ConsentArtefact.from_dict(json.loads(encoded)) == artefact
    assert ConsentArtefact.from_dict(artefact.to_dict()).canonical_bytes() == encoded


@given(artefacts())
def test_canonical_form_is_sorted_compact_utf8_json_with_z_timestamps(
    artefact: ConsentArtefact,
) -> None:
    encoded = artefact.canonical_bytes()
    data = json.loads(encoded)
    assert encoded == json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert "uses" not in data
    stamps = [data["created_at"], data["valid_from"], data["valid_until"]]
    stamps += [entry["at"] for entry in data["history"]]
    stamps += [data["last_used_at"]] if data["use_count"] else []
    assert (data["last_used_at"] is None) == (data["use_count"] == 0)
    assert all(RFC3339_Z.fullmatch(stamp) for stamp in stamps)


@given(artefacts())
def test_digest_covers_everything_but_the_live_fields(artefact: ConsentArtefact) -> None:
    assert {"use_count", "last_used_at", "ledger_anchor"} == LIVE_FIELDS
    data = artefact.to_dict()
    assert {"use_count", "last_used_at", "ledger_anchor"} <= data.keys()
    covered = {k: v for k, v in data.items() if k not in LIVE_FIELDS}
    expected = hashlib.sha256(
        json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert artefact.digest() == expected == digest_of(data)
    reworded = Purpose(artefact.purpose.code, artefact.purpose.text + "!")
    assert replace(artefact, purpose=reworded).digest() != artefact.digest()
    later = artefact.valid_until + timedelta(seconds=1)
    assert replace(artefact, valid_until=later).digest() != artefact.digest()


@given(
    st.data(),
    artefacts(),
    st.builds(LedgerAnchor, st.integers(0, 99), st.just("q-1"), st.just("cp")),
)
def test_live_annotations_keep_the_version_and_its_digest(
    data: st.DataObject, artefact: ConsentArtefact, anchor: LedgerAnchor
) -> None:
    use_count, last_used_at = data.draw(usages(artefact.fetch_type))
    annotated = artefact.with_usage(use_count, last_used_at).with_anchor(anchor)
    assert annotated.digest() == artefact.digest()
    assert annotated.digest() == digest_of(annotated.to_dict()) == digest_of(artefact.to_dict())
    assert (annotated.version, annotated.predecessor_hash) == (
        artefact.version,
        artefact.predecessor_hash,
    )
    stamp = None if last_used_at is None else as_utc(last_used_at)
    assert (annotated.use_count, annotated.last_used_at, annotated.ledger_anchor) == (
        use_count,
        stamp,
        anchor,
    )
    assert (
        replace(
            annotated,
            use_count=artefact.use_count,
            last_used_at=artefact.last_used_at,
            ledger_anchor=artefact.ledger_anchor,
        )
        == artefact
    )
    # The counters are still part of what a receipt signs; the anchor too.
    body = json.loads(annotated.canonical_bytes())
    assert body["use_count"] == use_count
    if (use_count, stamp) != (artefact.use_count, artefact.last_used_at):
        assert annotated.canonical_bytes() != artefact.with_anchor(anchor).canonical_bytes()
    assert annotated.canonical_bytes() != annotated.with_anchor(None).canonical_bytes()
    assert ConsentArtefact.from_dict(body) == annotated


@given(artefacts())
def test_with_usage_validates_the_counters(artefact: ConsentArtefact) -> None:
    assert artefact.with_usage(artefact.use_count, artefact.last_used_at) is artefact
    with pytest.raises(ConsentInvalid, match="last_used_at"):
        artefact.with_usage(1, None)
    with pytest.raises(ConsentInvalid, match="last_used_at"):
        artefact.with_usage(0, T0)
    with pytest.raises(ConsentInvalid, match="use_count"):
        artefact.with_usage(-1, T0)
    if artefact.fetch_type is FetchType.ONCE:
        with pytest.raises(ConsentInvalid, match="use_count"):
            artefact.with_usage(2, T0)
    mexico_city = timezone(timedelta(hours=-6))
    moved = artefact.with_usage(
        3 if artefact.fetch_type is FetchType.PERIODIC else 1,
        datetime(2025, 5, 10, 2, 30, 15, 500, tzinfo=mexico_city),
    )
    assert moved.last_used_at == datetime(2025, 5, 10, 8, 30, 15, tzinfo=UTC)


def test_values_are_normalised_on_construction() -> None:
    mexico_city = timezone(timedelta(hours=-6))
    artefact = granted(
        categories=["b", "a", "b"],
        now=datetime(2025, 5, 10, 2, 30, 15, 999_999, tzinfo=mexico_city),
        valid_until=datetime(2025, 8, 1, tzinfo=mexico_city),
    )
    assert artefact.categories == ("a", "b")
    assert artefact.created_at == datetime(2025, 5, 10, 8, 30, 15, tzinfo=UTC)
    assert artefact.created_at.tzinfo is UTC
    assert artefact.to_dict()["valid_until"] == "2025-08-01T06:00:00Z"
    assert "Darte de alta" in artefact.canonical_bytes().decode("utf-8")


def test_non_ascii_text_is_encoded_literally() -> None:
    artefact = granted(purpose=Purpose("alta", "Inscripción al padrón"))
    assert "Inscripción al padrón".encode() in artefact.canonical_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_principal": "GODE561231HDFRRN09"}, "CURP"),
        ({"data_principal": "ciudadano:gode561231hdfrrn09"}, "CURP"),
        ({"valid_until": T0 - timedelta(days=1)}, "valid_until"),
        ({"valid_from": datetime(2025, 1, 1)}, "zona horaria"),
        ({"categories": ()}, "categories"),
        ({"version": 0}, "version"),
        ({"version": 2}, "predecessor_hash"),
        ({"predecessor_hash": "ab" * 32}, "predecesora"),
        ({"status": Status.PAUSED}, "history"),
        ({"access_mode": "read"}, "access_mode"),
        ({"use_count": 1}, "last_used_at"),
        ({"last_used_at": T0}, "last_used_at"),
        ({"use_count": -1, "last_used_at": T0}, "use_count"),
        ({"use_count": True, "last_used_at": T0}, "use_count"),
        ({"data_consumer": ""}, "data_consumer"),
    ],
)
def test_invariants_are_enforced(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConsentInvalid, match=message) as caught:
        replace(granted(), **change)  # type: ignore[arg-type]
    assert (caught.value.slug, caught.value.status) == ("consent-invalid", 422)


def test_once_consents_hold_at_most_one_use() -> None:
    artefact = granted(fetch_type=FetchType.ONCE)
    with pytest.raises(ConsentInvalid):
        replace(artefact, use_count=2, last_used_at=T0)
    assert replace(artefact, use_count=1, last_used_at=T0).use_count == 1
    periodic = granted()
    assert replace(periodic, use_count=2, last_used_at=T0).use_count == 2


def test_frequency_and_data_life_are_validated() -> None:
    with pytest.raises(ConsentInvalid):
        Frequency(TimeUnit.DAY, 0)
    with pytest.raises(ConsentInvalid):
        Frequency("fortnight", 1)  # type: ignore[arg-type]
    with pytest.raises(ConsentInvalid):
        DataLife(TimeUnit.YEAR, -1)
    assert DataLife(TimeUnit.MONTH, 1).ends(datetime(2024, 1, 31, tzinfo=UTC)) == datetime(
        2024, 2, 29, tzinfo=UTC
    )


def test_from_dict_refuses_malformed_values() -> None:
    data = granted().to_dict()
    for key, bad in [("version", "2"), ("created_at", "ayer"), ("status", "borrado")]:
        with pytest.raises(ConsentInvalid):
            ConsentArtefact.from_dict({**data, key: bad})
    with pytest.raises(ConsentInvalid):
        ConsentArtefact.from_dict({**data, "valid_from": "2025-05-10T08:30:00"})


def _life() -> list[ConsentArtefact]:
    requested = request_consent(
        consent_id="c-9",
        principal="cit-1",
        consumer="sep",
        categories=["certificado_estudios"],
        purpose=Purpose("beca", "Revisar tu certificado para la beca"),
        duration=timedelta(days=30),
        now=T0,
        fetch_type=FetchType.PERIODIC,
        frequency=Frequency(TimeUnit.WEEK, 1),
    ).artefact
    active = approve(requested, Actor.CITIZEN, T0 + timedelta(hours=1)).artefact
    used = record_use(active, T0 + timedelta(hours=2))
    paused = pause(used, Actor.CITIZEN, T0 + timedelta(hours=3)).artefact
    resumed = resume(paused, Actor.CITIZEN, T0 + timedelta(hours=4)).artefact
    return [requested, used, paused, resumed]


def test_a_consents_life_forms_a_verifying_chain() -> None:
    chain = _life()
    assert chain_problems(chain) == ()
    assert [a.version for a in chain] == [1, 2, 3, 4]
    assert all(b.predecessor_hash == a.digest() for a, b in pairwise(chain))
    assert chain[-1].history[:-1] == chain[-2].history
    assert [a.use_count for a in chain] == [0, 1, 1, 1]
    assert all(a.last_used_at == T0 + timedelta(hours=2) for a in chain[1:])
    # A use is not a version: the chain verifies with version 2 as it stood before the use.
    before_use = chain[1].with_usage(0, None)
    assert before_use.digest() == chain[1].digest()
    assert chain_problems([chain[0], before_use, *chain[2:]]) == ()
    assert before_use.canonical_bytes() != chain[1].canonical_bytes()


def test_chain_problems_finds_counters_running_backwards() -> None:
    chain = _life()
    forgotten = chain[2].with_usage(0, None)
    assert forgotten.digest() == chain[2].digest()
    problems = chain_problems([*chain[:2], forgotten, *chain[3:]])
    assert problems == ("v3: goes back in time or in uses",)


def test_chain_problems_finds_tampering() -> None:
    chain = _life()
    widened = replace(chain[2], categories=("certificado_estudios", "expediente_clinico"))
    assert any("predecessor_hash" in p for p in chain_problems([*chain[:2], widened, *chain[3:]]))
    assert any("fixed term categories" in p for p in chain_problems([*chain[:2], widened]))
    rewritten = replace(
        chain[3],
        history=(replace(chain[3].history[0], by=Actor.CITIZEN), *chain[3].history[1:]),
    )
    assert any("history was rewritten" in p for p in chain_problems([*chain[:3], rewritten]))
    assert any("follows v1" in p for p in chain_problems([chain[0], chain[2]]))
    assert chain_problems(chain[1:]) == ("chain does not start at version 1",)
    assert chain_problems([]) == ("empty chain",)


def test_rfc3339_and_calendar_shifts() -> None:
    assert rfc3339(datetime(5, 1, 2, 3, 4, 5, 600, tzinfo=UTC)) == "0005-01-02T03:04:05Z"
    assert shift(datetime(2025, 3, 31, tzinfo=UTC), TimeUnit.MONTH, -1) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert shift(datetime(2024, 2, 29, tzinfo=UTC), TimeUnit.YEAR, -1) == datetime(
        2023, 2, 28, tzinfo=UTC
    )
    assert shift(datetime(1, 1, 5, tzinfo=UTC), TimeUnit.MONTH, -1) == datetime.min.replace(
        tzinfo=UTC
    )
    assert shift(datetime(9999, 12, 31, tzinfo=UTC), TimeUnit.DAY, 2).year == 9999
