"""Load certificates whose names break PrintableString's alphabet, as SAT's often do.

SAT tags every subject value as PrintableString, even names such as ``MUÑOZ`` or
``AT&T ...`` whose characters PrintableString cannot hold; ``cryptography`` rightly refuses
those. We re-encode such values as UTF8String in a *copy* used only for reading fields, and
keep the original ``tbsCertificate`` and issuer-name bytes: signatures and OCSP certificate
ids are computed over the bytes the CA actually wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from eidentity.efirma import der

#: RFC 5280 Appendix B: the only characters a PrintableString may hold.
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


@dataclass(frozen=True)
class RawCertificate:
    """The pieces of the original encoding that must never be re-encoded."""

    tbs: bytes
    issuer_name: bytes
    subject_name: bytes
    retagged: bool


def split_certificate(data: bytes) -> tuple[list[der.Tlv], list[der.Tlv]]:
    """Return (Certificate children, tbsCertificate children)."""
    outer = der.read_one(data).children()
    if len(outer) != 3 or outer[0].tag != der.SEQUENCE:
        raise der.DerError("not a Certificate")
    return outer, outer[0].children()


def name_indexes(tbs: list[der.Tlv]) -> tuple[int, int]:
    """Positions of issuer and subject inside tbsCertificate (version is optional)."""
    offset = 1 if tbs and tbs[0].tag == 0xA0 else 0
    if len(tbs) < offset + 6:
        raise der.DerError("short tbsCertificate")
    return offset + 2, offset + 4


def retag_name(name: der.Tlv, *, to_tag: int, only_invalid: bool) -> bytes:
    """Re-encode a Name, changing string tags of (invalid) PrintableString values."""
    rdns: list[bytes] = []
    for rdn in name.children():
        attributes: list[bytes] = []
        for atv in rdn.children():
            oid, value = atv.children()
            if value.tag in (der.PRINTABLE_STRING, der.UTF8_STRING) and (
                not only_invalid or not set(value.content) <= PRINTABLE
            ):
                text = _as_utf8(value.content)
                attributes.append(der.sequence(oid.raw, der.encode(to_tag, text)))
            else:
                attributes.append(atv.raw)
        rdns.append(der.encode(der.SET, b"".join(attributes)))
    return der.encode(der.SEQUENCE, b"".join(rdns))


def _as_utf8(content: bytes) -> bytes:
    """SAT writes UTF-8 into PrintableString; older issuers wrote Latin-1."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1").encode("utf-8")
    return content


def _touch(cert: x509.Certificate) -> None:
    """``cryptography`` parses some fields lazily; force them now so errors surface here."""
    _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key())


def load_der_certificate(data: bytes) -> tuple[x509.Certificate, RawCertificate]:
    """Load DER, repairing mis-tagged PrintableString names when ``cryptography`` balks."""
    outer, tbs = split_certificate(data)
    issuer_at, subject_at = name_indexes(tbs)
    try:
        cert = x509.load_der_x509_certificate(data)
        _touch(cert)
        retagged = False
    except ValueError:
        fields = [item.raw for item in tbs]
        for index in (issuer_at, subject_at):
            fields[index] = retag_name(tbs[index], to_tag=der.UTF8_STRING, only_invalid=True)
        new_tbs = der.sequence(*fields)
        cert = x509.load_der_x509_certificate(der.sequence(new_tbs, outer[1].raw, outer[2].raw))
        _touch(cert)
        retagged = True
    raw = RawCertificate(outer[0].raw, tbs[issuer_at].raw, tbs[subject_at].raw, retagged)
    return cert, raw
