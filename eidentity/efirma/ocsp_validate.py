"""Build OCSP requests and decide whether an OCSP response can be believed (RFC 6960).

A response is only evidence if it answers for *this* certificate (same CertID), was signed
by the issuing CA itself or by a responder certificate that CA issued for OCSP signing, and is
fresh. Anything short of that is "no answer", never "good".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from eidentity.efirma import der
from eidentity.efirma.certificate import EfirmaCertificate
from eidentity.efirma.errors import OcspUnavailable
from eidentity.efirma.signatures import issued_by, signature_valid


@dataclass(frozen=True)
class CertId:
    algorithm: hashes.HashAlgorithm
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING content (what OCSP key hashes cover)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = der.read_one(spki).children()[1]
    return bits.content[1:]


def key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    return _digest(algorithm, public_key_bits(cert))


def cert_id(
    cert: EfirmaCertificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> CertId:
    """CertID over the issuer name *as written in the certificate* and the issuer's key."""
    return CertId(
        algorithm,
        _digest(algorithm, cert.issuer_name_der),
        key_hash(issuer, algorithm),
        cert.x509.serial_number,
    )


def build_request(target: CertId) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        target.issuer_name_hash, target.issuer_key_hash, target.serial_number, target.algorithm
    )
    return request.build().public_bytes(serialization.Encoding.DER)


def _matches(single: ocsp.OCSPSingleResponse, target: CertId) -> bool:
    return (
        single.hash_algorithm.name == target.algorithm.name
        and single.issuer_name_hash == target.issuer_name_hash
        and single.issuer_key_hash == target.issuer_key_hash
        and single.serial_number == target.serial_number
    )


def _names_signer(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:  # RFC 6960 fixes KeyHash to SHA-1
        return response.responder_key_hash == key_hash(cert, hashes.SHA1())  # noqa: S303
    return response.responder_name == cert.subject


def _delegate_ok(candidate: x509.Certificate, issuer: x509.Certificate, now: datetime) -> bool:
    """RFC 6960 §4.2.2.2: issued directly by the CA and marked for OCSP signing."""
    try:
        usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return (
        ExtendedKeyUsageOID.OCSP_SIGNING in usages
        and candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc
        and issued_by(candidate.tbs_certificate_bytes, candidate, issuer)
    )


def responder_key(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """The certificate whose key must have signed ``response``."""
    if _names_signer(response, issuer):
        return issuer
    for candidate in response.certificates:
        if _names_signer(response, candidate) and _delegate_ok(candidate, issuer, now):
            return candidate
    raise OcspUnavailable("La respuesta OCSP no viene de un respondedor autorizado por la AC.")


def single_response(
    body: bytes,
    target: CertId,
    issuer: x509.Certificate,
    now: datetime,
    *,
    max_age: timedelta,
    skew: timedelta,
) -> tuple[ocsp.OCSPResponse, ocsp.OCSPSingleResponse, x509.Certificate]:
    """Return (response, the single answer for ``target``, the signer); refuse anything else."""
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise OcspUnavailable("La respuesta OCSP no se pudo leer.") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspUnavailable(f"El respondedor OCSP contestó {response.response_status.name}.")
    signer = responder_key(response, issuer, now)
    if not signature_valid(
        signer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
    ):
        raise OcspUnavailable("La firma de la respuesta OCSP no es válida.")
    single = next((s for s in response.responses if _matches(s, target)), None)
    if single is None:
        raise OcspUnavailable("La respuesta OCSP no corresponde a este certificado.")
    if single.this_update_utc > now + skew:
        raise OcspUnavailable("La respuesta OCSP está fechada en el futuro.")
    expires = single.next_update_utc or single.this_update_utc + max_age
    if now > expires + skew:
        raise OcspUnavailable("La respuesta OCSP ya no está vigente.")
    return response, single, signer
