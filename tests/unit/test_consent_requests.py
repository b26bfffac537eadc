"""Agency consent requests: over-asking refused with exactly the extra items listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.artefact import FetchType, Status
from consent.errors import ConsentInvalid
from consent.events import ConsentRequested
from consent.machine import Transition
from consent.periods import Frequency, TimeUnit
from consent.requests import (
    MAX_DURATION_DAYS,
    AgencyRegistration,
    ConsentRequest,
    OverAsk,
    open_request,
    outside_registration,
    required_assurance,
)

T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
CATALOGUE = {
    "acta_nacimiento": False,
    "constancia_situacion_fiscal": False,
    "nss_imss": False,
    "certificado_estudios": False,
    "padron_bienestar": False,
    "expediente_clinico": True,
}
IMSS = AgencyRegistration(
    agency_id="imss",
    categories=frozenset({"acta_nacimiento", "nss_imss", "expediente_clinico"}),
    purposes=frozenset({"alta", "incapacidad"}),
)


def ask(request: ConsentRequest, registration: AgencyRegistration = IMSS) -> Transition | OverAsk:
    return open_request(request, registration, consent_id="c-1", principal="cit-1", now=T0)


@given(
    registered=st.sets(st.sampled_from(sorted(CATALOGUE)), min_size=1),
    asked=st.sets(st.sampled_from([*CATALOGUE, "historial_crediticio"]), min_size=1),
    purposes=st.sets(st.sampled_from(["alta", "cobranza", "incapacidad"]), min_size=1),
    purpose=st.sampled_from(["alta", "cobranza", "incapacidad"]),
)
def test_over_asking_lists_exactly_what_is_outside_the_registration(
    registered: set[str], asked: set[str], purposes: set[str], purpose: str
) -> None:
    registration = AgencyRegistration("imss", frozenset(registered), frozenset(purposes))
    request = ConsentRequest(tuple(asked), purpose, "Para darte de alta", 30)
    outcome = ask(request, registration)
    extra_categories = tuple(sorted(asked - registered))
    extra_purposes = () if purpose in purposes else (purpose,)
    if extra_categories or extra_purposes:
        assert outcome == OverAsk("imss", "cit-1", extra_categories, extra_purposes, T0)
    else:
        assert isinstance(outcome, Transition)
        assert outcome.artefact.categories == tuple(sorted(asked))
    assert outside_registration(registration, asked, purpose) == (extra_categories, extra_purposes)


def test_a_request_within_the_registration_opens_a_pending_consent() -> None:
    outcome = ask(ConsentRequest(("nss_imss", "acta_nacimiento"), "alta", "Darte de alta", 90))
    assert isinstance(outcome, Transition)
    artefact, event = outcome
    assert artefact.status is Status.REQUESTED
    assert (artefact.version, artefact.predecessor_hash) == (1, None)
    assert (artefact.data_consumer, artefact.data_principal) == ("imss", "cit-1")
    assert artefact.categories == ("acta_nacimiento", "nss_imss")
    assert (artefact.purpose.code, artefact.purpose.text) == ("alta", "Darte de alta")
    assert artefact.valid_until - artefact.valid_from == timedelta(days=90)
    assert artefact.fetch_type is FetchType.ONCE
    assert isinstance(event, ConsentRequested)


def test_a_frequency_makes_the_consent_periodic() -> None:
    weekly = Frequency(TimeUnit.WEEK, 1)
    outcome = ask(ConsentRequest(("nss_imss",), "incapacidad", "Seguir tu incapacidad", 60, weekly))
    assert isinstance(outcome, Transition)
    assert outcome.artefact.fetch_type is FetchType.PERIODIC
    assert outcome.artefact.frequency == weekly


def test_an_over_ask_can_be_shown_and_logged() -> None:
    outcome = ask(ConsentRequest(("expediente_clinico", "padron_bienestar"), "cobranza", "x", 9))
    assert isinstance(outcome, OverAsk)
    assert outcome.to_dict() == {
        "consumer": "imss",
        "principal": "cit-1",
        "categories": ["padron_bienestar"],
        "purposes": ["cobranza"],
        "at": "2025-07-01T12:00:00Z",
    }
    assert (outcome.slug, outcome.status) == ("consent-over-ask", 403)
    assert "imss" in outcome.citizen_notice
    assert "cit-1" not in outcome.citizen_notice


@pytest.mark.parametrize(
    "request_",
    [
        ConsentRequest((), "alta", "texto", 30),
        ConsentRequest(("nss_imss",), "", "texto", 30),
        ConsentRequest(("nss_imss",), "alta", "  ", 30),
        ConsentRequest(("nss_imss",), "alta", "texto", 0),
        ConsentRequest(("nss_imss",), "alta", "texto", MAX_DURATION_DAYS + 1),
        ConsentRequest(("nss_imss",), "alta", "texto", True),
    ],
)
def test_malformed_requests_are_422_not_over_asks(request_: ConsentRequest) -> None:
    with pytest.raises(ConsentInvalid) as caught:
        ask(request_)
    assert caught.value.status == 422


def test_sensitive_categories_need_substantial_assurance() -> None:
    assert required_assurance(["acta_nacimiento", "nss_imss"], CATALOGUE) == "low"
    assert required_assurance(["acta_nacimiento", "expediente_clinico"], CATALOGUE) == "substantial"
    assert required_assurance(["no_catalogada"], CATALOGUE) == "substantial"
