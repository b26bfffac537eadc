"""An agency's consent request, checked against what the agency is registered to ask for.

Over-asking is a business outcome, not a malformed request: :func:`open_request` returns an
:class:`OverAsk` value (the app answers 403 and warns the citizen, and the attempt is logged),
while a request that is simply ill-formed raises ``ConsentInvalid`` (422).

Defaults where the contract leaves fields out (least privilege): no ``frequency`` means a single
fetch (``once``); ``access_mode`` is ``view`` and ``data_life`` zero; the data may come from any
holder. The ``frequency``, when given, makes the consent ``periodic``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from consent.artefact import ANY_PROVIDER, AccessMode, FetchType, Purpose
from consent.errors import ConsentInvalid
from consent.machine import DEFAULT_FREQUENCY, Transition, request_consent
from consent.periods import Frequency, as_utc, rfc3339

#: Longest consent an agency may ask for in one request (five years).
MAX_DURATION_DAYS = 1827

AssuranceName = Literal["low", "substantial", "high"]


@dataclass(frozen=True, slots=True)
class AgencyRegistration:
    """What an agency may ask citizens for, as registered (``carpeta agency add``)."""

    agency_id: str
    categories: frozenset[str]
    purposes: frozenset[str]


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """The agency's request body, minus the CURP (resolved to a citizen id by the caller)."""

    categories: tuple[str, ...]
    purpose: str
    purpose_text: str
    duration_days: int
    frequency: Frequency | None = None


@dataclass(frozen=True, slots=True)
class OverAsk:
    """A refused request: exactly what lay outside the agency's registration. Carries its
    problem ``slug``/``title``/``status`` like the errors do, for the app's 403 answer."""

    slug: ClassVar[str] = "consent-over-ask"
    title: ClassVar[str] = (
        "La solicitud pide datos o finalidades que la dependencia no tiene registrados."
    )
    status: ClassVar[int] = 403

    consumer: str
    principal: str
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "principal": self.principal,
            "categories": list(self.categories),
            "purposes": list(self.purposes),
            "at": rfc3339(self.at),
        }

    @property
    def citizen_notice(self) -> str:
        """What the citizen is told (inbox and SMS): short, es-MX, no personal data."""
        return (
            f"La dependencia {self.consumer} pidió acceso a datos que no tiene autorizados. "
            "Rechazamos la solicitud; no se compartió nada."
        )


def outside_registration(
    registration: AgencyRegistration, categories: Iterable[str], purpose: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categories, purposes) asked for but not registered, sorted; both empty when in scope.
    Also the check for a citizen's proactive grant: nobody can widen an agency's mandate."""
    extra_categories = tuple(sorted(set(categories) - registration.categories))
    extra_purposes = () if purpose in registration.purposes else (purpose,)
    return extra_categories, extra_purposes


def _validate(request: ConsentRequest) -> None:
    if not request.categories or not all(isinstance(c, str) and c for c in request.categories):
        raise ConsentInvalid("Indica al menos una categoría de datos.")
    if not isinstance(request.purpose, str) or not request.purpose:
        raise ConsentInvalid("Indica la finalidad.")
    if not isinstance(request.purpose_text, str) or not request.purpose_text.strip():
        raise ConsentInvalid("Explica la finalidad en palabras que la persona entienda.")
    days = request.duration_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DURATION_DAYS:
        raise ConsentInvalid(f"La duración debe ser de 1 a {MAX_DURATION_DAYS} días.")


def open_request(
    request: ConsentRequest,
    registration: AgencyRegistration,
    *,
    consent_id: str,
    principal: str,
    now: datetime,
    provider: str = ANY_PROVIDER,
) -> Transition | OverAsk:
    """The ``requested`` artefact and its ``ConsentRequested`` event, or the over-ask."""
    _validate(request)
    extra_categories, extra_purposes = outside_registration(
        registration, request.categories, request.purpose
    )
    if extra_categories or extra_purposes:
        return OverAsk(
            consumer=registration.agency_id,
            principal=principal,
            categories=extra_categories,
            purposes=extra_purposes,
            at=as_utc(now),
        )
    return request_consent(
        consent_id=consent_id,
        principal=principal,
        consumer=registration.agency_id,
        categories=tuple(request.categories),
        purpose=Purpose(code=request.purpose, text=request.purpose_text),
        duration=timedelta(days=request.duration_days),
        now=now,
        provider=provider,
        access_mode=AccessMode.VIEW,
        fetch_type=FetchType.ONCE if request.frequency is None else FetchType.PERIODIC,
        frequency=request.frequency or DEFAULT_FREQUENCY,
    )


def required_assurance(categories: Iterable[str], sensitive: Mapping[str, bool]) -> AssuranceName:
    """Assurance a citizen needs to approve or grant consent over ``categories``, given the
    catalogue's ``sensitive`` flags: ``substantial`` if any is sensitive, else ``low``. A
    category missing from the catalogue counts as sensitive (fail closed)."""
    if any(sensitive.get(category, True) for category in categories):
        return "substantial"
    return "low"
