"""Each e.firma refusal has its own stable slug, a Spanish title and a fitting status."""

from __future__ import annotations

import pytest

from eidentity.efirma import errors
from eidentity.errors import IdentityError

EXPECTED = {
    errors.CertificateUnparseable: ("certificate-unparseable", 400),
    errors.CertificateNotEfirma: ("certificate-not-efirma", 403),
    errors.CertificateUnknownIssuer: ("certificate-unknown-issuer", 401),
    errors.CertificateExpired: ("certificate-expired", 401),
    errors.CertificateNotYetValid: ("certificate-not-yet-valid", 401),
    errors.CertificateRevokedCrl: ("certificate-revoked-crl", 401),
    errors.CertificateRevokedOcsp: ("certificate-revoked-ocsp", 401),
    errors.CrlUnavailable: ("crl-unavailable", 503),
    errors.OcspUnavailable: ("ocsp-unavailable", 503),
    errors.SignatureInvalid: ("signature-invalid", 401),
}


@pytest.mark.parametrize("error", list(EXPECTED), ids=lambda e: e.__name__)
def test_slug_status_and_title(error: type[errors.EfirmaError]) -> None:
    assert (error.slug, error.status) == EXPECTED[error]
    assert issubclass(error, IdentityError)
    assert error.title.endswith(".")
    assert error.title != errors.EfirmaError.title


def test_slugs_are_unique_and_every_refusal_is_listed() -> None:
    subclasses = set(errors.EfirmaError.__subclasses__())
    assert subclasses == set(EXPECTED)
    assert len({e.slug for e in subclasses}) == len(subclasses)


def test_detail_defaults_to_title_and_evidence_is_kept() -> None:
    plain = errors.CertificateExpired()
    assert plain.detail == errors.CertificateExpired.title
    assert plain.evidence is None
    with_evidence = errors.OcspUnavailable("sin red", evidence={"ocsp": {"checked": False}})
    assert with_evidence.detail == "sin red"
    assert with_evidence.evidence == {"ocsp": {"checked": False}}
