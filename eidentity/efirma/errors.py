"""Why an e.firma sign-in was refused, one class per reason.

They extend :class:`eidentity.errors.IdentityError`, so the HTTP layer turns each into an
RFC 9457 problem (``slug``, es-MX ``title``, ``status``) without knowing it. Statuses: ``400``
when the input cannot be read at all, ``403`` when a sound certificate is of a kind that
cannot sign in (a CSD), ``401`` when authentication itself fails, ``503`` when revocation
status cannot be established and we fail closed. ``evidence`` keeps what the revocation
sources said (for the audit log, never sent to the client).
"""

from __future__ import annotations

from typing import ClassVar

from eidentity.errors import IdentityError


class EfirmaError(IdentityError):
    slug: ClassVar[str] = "efirma-refused"
    title: ClassVar[str] = "No pudimos validar tu e.firma."
    status: ClassVar[int] = 401

    def __init__(
        self, detail: str | None = None, *, evidence: dict[str, object] | None = None
    ) -> None:
        super().__init__(detail)
        self.evidence = evidence


class CertificateUnparseable(EfirmaError):
    slug = "certificate-unparseable"
    title = "No pudimos leer tu certificado (.cer). Revisa que sea el archivo correcto."
    status = 400


class CertificateNotEfirma(EfirmaError):
    slug = "certificate-not-efirma"
    title = (
        "Ese certificado es un sello digital (CSD) para facturar, no una e.firma. "
        "Usa el .cer de tu e.firma."
    )
    status = 403


class CertificateUnknownIssuer(EfirmaError):
    slug = "certificate-unknown-issuer"
    title = "Tu certificado no fue emitido por una autoridad que aceptemos."
    status = 401


class CertificateExpired(EfirmaError):
    slug = "certificate-expired"
    title = "Tu e.firma ya venció. Renuévala en el SAT para poder usarla."
    status = 401


class CertificateNotYetValid(EfirmaError):
    slug = "certificate-not-yet-valid"
    title = "Tu e.firma todavía no está vigente. Revisa la fecha de tu dispositivo o espera."
    status = 401


class CertificateRevokedCrl(EfirmaError):
    slug = "certificate-revoked-crl"
    title = "Tu e.firma fue revocada y ya no se puede usar."
    status = 401


class CertificateRevokedOcsp(EfirmaError):
    slug = "certificate-revoked-ocsp"
    title = "Tu e.firma fue revocada y ya no se puede usar."
    status = 401


class CrlUnavailable(EfirmaError):
    slug = "crl-unavailable"
    title = "No pudimos confirmar que tu e.firma siga vigente. Intenta más tarde."
    status = 503


class OcspUnavailable(EfirmaError):
    slug = "ocsp-unavailable"
    title = "No pudimos confirmar con el SAT que tu e.firma siga vigente. Intenta más tarde."
    status = 503


class SignatureInvalid(EfirmaError):
    slug = "signature-invalid"
    title = "La firma no corresponde a tu certificado. Revisa tu archivo .key y tu contraseña."
    status = 401
