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
from consent.periods import DataLife, Frequency, TimeUnit, rfc3339, shift

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


@st.composite
def artefacts(draw: st.DrawFn) -> ConsentArtefact:
    """Well-formed artefacts of every status, built straight from the constructor."""
    created = draw(instants)
    valid_from = created + timedelta(seconds=draw(st.integers(-86400, 86400 * 3)))
    valid_until = valid_from + timedelta(seconds=draw(st.integers(1, 86400 * 400)))
    fetch = draw(st.sampled_from(FetchType))
    frequency = Frequency(draw(st.sampled_from(TimeUnit)), draw(st.integers(1, 3)))
    limit = 1 if fetch is FetchType.ONCE else frequency.value
    uses = sorted(draw(st.lists(instants, max_size=limit)))
    extra = 0 if fetch is FetchType.ONCE else draw(st.integers(0, 5))
    use_count = len(uses) + extra if uses else draw(st.integers(0, 1 if limit == 1 else 5))
    last = uses[-1] if uses else (draw(instants) if use_count else None)
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
        uses=tuple(uses),
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
    stamps = [data["created_at"], data["valid_from"], data["valid_until"], *data["uses"]]
    stamps += [entry["at"] for entry in data["history"]]
    assert all(RFC3339_Z.fullmatch(stamp) for stamp in stamps)


@given(artefacts(), st.builds(LedgerAnchor, st.integers(0, 99), st.just("q-1"), st.just("cp")))
def test_digest_covers_everything_but_the_ledger_anchor(
    artefact: ConsentArtefact, anchor: LedgerAnchor
) -> None:
    covered = {k: v for k, v in artefact.to_dict().items() if k != "ledger_anchor"}
    expected = hashlib.sha256(
        json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert artefact.digest() == expected == digest_of(artefact.to_dict())
    anchored = artefact.with_anchor(anchor)
    assert anchored.version == artefact.version
    assert anchored.digest() == artefact.digest()
    assert anchored.canonical_bytes() != artefact.with_anchor(None).canonical_bytes()
    reworded = Purpose(artefact.purpose.code, artefact.purpose.text + "!")
    assert replace(artefact, purpose=reworded).digest() != artefact.digest()


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
        replace(artefact, use_count=2, last_used_at=T0, uses=(T0,))


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
    return [requested, active, used, paused, resumed]


def test_a_consents_life_forms_a_verifying_chain() -> None:
    chain = _life()
    assert chain_problems(chain) == ()
    assert [a.version for a in chain] == [1, 2, 3, 4, 5]
    assert all(b.predecessor_hash == a.digest() for a, b in pairwise(chain))
    assert chain[-1].history[:-1] == chain[-2].history
    assert chain[2].history == chain[1].history  # a use is a version, not a status change


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
