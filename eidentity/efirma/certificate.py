"""Read who an e.firma (or CSD) certificate belongs to, the way SAT writes it.

SAT puts the CURP in the subject ``serialNumber`` (2.5.4.5) and the RFC in
``x500UniqueIdentifier`` (2.5.4.45). A persona moral certificate holds both the company and
its legal representative: ``"COMPANY_RFC / REP_RFC"`` and ``" / REP_CURP"``; the person who
signs is the representative. The número de certificado is the serial number's bytes read as
ASCII digits. Nothing here decides trust: see :mod:`eidentity.efirma.verify`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eidentity.efirma.der import DerError
from eidentity.efirma.errors import CertificateUnparseable
from eidentity.efirma.tolerant import load_der_certificate

#: X.520 ``name`` (2.5.4.41), which SAT repeats next to the CN.
NAME_OID = x509.ObjectIdentifier("2.5.4.41")

Kind = Literal["efirma", "csd"]
Persona = Literal["fisica", "moral"]


#: Everything ``cryptography`` or our DER reader raise for bytes that are not a certificate.
_UNREADABLE = (
    DerError,
    ValueError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    TypeError,  # e.g. a name value re-tagged to a type cryptography only allows elsewhere
)


@dataclass(frozen=True)
class EfirmaCertificate:
    """A parsed SAT certificate. ``x509`` may be a re-tagged copy; ``der`` is the original."""

    der: bytes = field(repr=False)
    x509: x509.Certificate = field(repr=False)
    certificate_number: str
    rfc: str
    curp: str
    company_rfc: str | None
    name: str
    kind: Kind
    persona: Persona
    not_before: datetime
    not_after: datetime
    #: Original ``tbsCertificate`` bytes: what the issuer's signature covers.
    tbs_der: bytes = field(repr=False, compare=False)
    #: Original issuer ``Name`` bytes: what an OCSP issuerNameHash covers.
    issuer_name_der: bytes = field(repr=False, compare=False)


def parse_certificate(der: bytes) -> EfirmaCertificate:
    """Parse a DER certificate; raise :class:`CertificateUnparseable` for anything else."""
    try:
        cert, raw = load_der_certificate(bytes(der))
    except _UNREADABLE as exc:
        raise CertificateUnparseable("El archivo no es un certificado X.509 en DER.") from exc
    subject = cert.subject
    rfc_field = _single(subject, NameOID.X500_UNIQUE_IDENTIFIER)
    curp_field = _single(subject, NameOID.SERIAL_NUMBER)
    if not rfc_field or not curp_field:
        raise CertificateUnparseable("El certificado no trae RFC y CURP como los emite el SAT.")
    rfc, company_rfc = _split_rfc(rfc_field)
    curp = _last_part(curp_field)
    if not rfc or not curp:
        raise CertificateUnparseable("El certificado no trae RFC y CURP como los emite el SAT.")
    return EfirmaCertificate(
        der=bytes(der),
        x509=cert,
        certificate_number=certificate_number(cert.serial_number),
        rfc=rfc,
        curp=curp,
        company_rfc=company_rfc,
        name=_name(subject),
        kind=_kind(cert),
        persona="moral" if company_rfc else "fisica",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        tbs_der=raw.tbs,
        issuer_name_der=raw.issuer_name,
    )


def certificate_number(serial: int) -> str:
    """SAT's número de certificado: the serial's bytes as ASCII (decimal if they are not)."""
    if serial < 0:  # invalid per RFC 5280, but do not crash on it
        return str(serial)
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    text = raw.decode("ascii", errors="replace")
    return text if text.isdigit() else str(serial)


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        return ""
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _last_part(value: str) -> str:
    """``" / HEGT761003MDFRNN09"`` → ``HEGT761003MDFRNN09``; a plain value stays as is."""
    parts = [part.strip().upper() for part in value.split("/")]
    return next((part for part in reversed(parts) if part), "")


def _split_rfc(value: str) -> tuple[str, str | None]:
    """Return (signer RFC, company RFC or None)."""
    parts = [part.strip().upper() for part in value.split("/")]
    if len(parts) >= 2 and parts[0] and parts[-1]:
        return parts[-1], parts[0]
    return _last_part(value), None


def _name(subject: x509.Name) -> str:
    for oid in (NameOID.COMMON_NAME, NAME_OID, NameOID.ORGANIZATION_NAME):
        value = _single(subject, oid)
        if value:
            return value.strip()
    return ""


def _kind(cert: x509.Certificate) -> Kind:
    """An e.firma has no OU and may authenticate clients; anything else is treated as a CSD."""
    if cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        return "csd"
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "csd"
    return "efirma" if ExtendedKeyUsageOID.CLIENT_AUTH in usages else "csd"
