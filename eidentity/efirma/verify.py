"""Decide whether an e.firma signature proves who is signing in.

Checks run in a fixed order and each failure has its own error, so a citizen learns the one
thing to fix (a CSD instead of an e.firma, an expired certificate...) and the audit log can
count refusals by cause. Revocation verdicts are returned as ``evidence`` to be stored with
the session: a later dispute can show what SAT's CRL/OCSP said at sign-in time.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eidentity.efirma.certificate import EfirmaCertificate, parse_certificate
from eidentity.efirma.errors import (
    CertificateExpired,
    CertificateNotEfirma,
    CertificateNotYetValid,
    CertificateRevokedCrl,
    CertificateRevokedOcsp,
    CertificateUnknownIssuer,
    CrlUnavailable,
    OcspUnavailable,
    SignatureInvalid,
)
from eidentity.efirma.ocsp import RevocationChecker
from eidentity.efirma.signatures import issued_by, signature_valid
from eidentity.efirma.tolerant import load_der_certificate

_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


@dataclass(frozen=True)
class VerifiedSigner:
    """The certificate that signed, plus what the revocation sources said about it."""

    certificate: EfirmaCertificate
    evidence: dict[str, object]

    @property
    def curp(self) -> str:
        return self.certificate.curp

    @property
    def rfc(self) -> str:
        return self.certificate.rfc

    @property
    def company_rfc(self) -> str | None:
        return self.certificate.company_rfc

    @property
    def name(self) -> str:
        return self.certificate.name

    @property
    def certificate_number(self) -> str:
        return self.certificate.certificate_number


def load_trust_anchors(pem_bundle_path: str | Path) -> list[x509.Certificate]:
    """CA certificates from a PEM bundle (a single DER certificate is accepted too)."""
    data = Path(pem_bundle_path).read_bytes()
    blocks = [base64.b64decode(b"".join(m.split())) for m in _PEM_CERT.findall(data)]
    anchors = [load_der_certificate(block)[0] for block in blocks or [data]]
    if not anchors:
        raise ValueError(f"{pem_bundle_path}: no certificates")
    return anchors


def load_crl(path: str | Path) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class EfirmaVerifier:
    """Verifies a challenge signature made with an e.firma against configured trust."""

    def __init__(
        self,
        trust_anchors: Sequence[x509.Certificate],
        crl: x509.CertificateRevocationList | None = None,
        ocsp: RevocationChecker | None = None,
        ocsp_fail_open: bool = False,
    ) -> None:
        self.trust_anchors = list(trust_anchors)
        self.crl = crl
        self.ocsp = ocsp
        self.ocsp_fail_open = ocsp_fail_open
        self._crl_issuer = self._find_crl_issuer(crl) if crl is not None else None

    def _find_crl_issuer(self, crl: x509.CertificateRevocationList) -> x509.Certificate:
        """A CRL nobody we trust signed is a configuration error: refuse to start."""
        for anchor in self.trust_anchors:
            if crl.issuer == anchor.subject and signature_valid(
                anchor.public_key(),
                crl.signature,
                crl.tbs_certlist_bytes,
                crl.signature_hash_algorithm,
                crl.signature_algorithm_parameters,
            ):
                return anchor
        raise ValueError("the configured CRL is not signed by any trust anchor")

    async def verify(
        self, certificate_der: bytes, signature: bytes, message: bytes, now: datetime
    ) -> VerifiedSigner:
        """Run every check in order; return the signer or raise the first refusal."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        cert = parse_certificate(certificate_der)
        if cert.kind != "efirma":
            raise CertificateNotEfirma(
                f"El certificado {cert.certificate_number} es un CSD (sello digital)."
            )
        issuer = self._issuer_of(cert)
        self._check_validity(cert, now)
        # The signature before revocation: someone holding only a public .cer must not be able
        # to make us query the OCSP responder (and learn revocation status) on their behalf.
        self._check_signature(cert, signature, message)
        evidence: dict[str, object] = {
            "certificate_number": cert.certificate_number,
            "issuer": issuer.subject.rfc4514_string(),
            "checked_at": now.isoformat(),
            "crl": self._check_crl(cert, issuer, now),
        }
        evidence["ocsp"] = await self._check_ocsp(cert, issuer, now, evidence)
        return VerifiedSigner(cert, evidence)

    def _issuer_of(self, cert: EfirmaCertificate) -> x509.Certificate:
        for anchor in self.trust_anchors:
            if issued_by(cert.tbs_der, cert.x509, anchor):
                return anchor
        raise CertificateUnknownIssuer(f"Emisor no reconocido: {cert.x509.issuer.rfc4514_string()}")

    @staticmethod
    def _check_validity(cert: EfirmaCertificate, now: datetime) -> None:
        if now < cert.not_before:
            raise CertificateNotYetValid(f"Vigente a partir de {cert.not_before.isoformat()}.")
        if now > cert.not_after:
            raise CertificateExpired(f"Venció el {cert.not_after.isoformat()}.")

    def _check_crl(
        self, cert: EfirmaCertificate, issuer: x509.Certificate, now: datetime
    ) -> dict[str, object]:
        crl = self.crl
        if crl is None:
            return {"checked": False, "reason": "no CRL configured"}
        if self._crl_issuer is not issuer:
            return {"checked": False, "reason": "the configured CRL covers another issuer"}
        described: dict[str, object] = {
            "checked": True,
            "issuer": crl.issuer.rfc4514_string(),
            "this_update": _iso(crl.last_update_utc),
            "next_update": _iso(crl.next_update_utc),
        }
        if crl.next_update_utc is not None and now > crl.next_update_utc:
            raise CrlUnavailable("La CRL configurada ya no está vigente.", evidence=described)
        entry = crl.get_revoked_certificate_by_serial_number(cert.x509.serial_number)
        if entry is not None:
            described["status"] = "revoked"
            described["revocation_date"] = _iso(entry.revocation_date_utc)
            raise CertificateRevokedCrl(
                f"Revocado el {entry.revocation_date_utc.isoformat()}.",
                evidence={"crl": described},
            )
        described["status"] = "not-listed"
        return described

    async def _check_ocsp(
        self,
        cert: EfirmaCertificate,
        issuer: x509.Certificate,
        now: datetime,
        evidence: dict[str, object],
    ) -> dict[str, object]:
        if self.ocsp is None:
            return {"checked": False, "reason": "no OCSP responder configured"}
        try:
            verdict = await self.ocsp.check(cert, issuer, now=now)
            if verdict.status == "unknown":
                raise OcspUnavailable("El respondedor OCSP no conoce este certificado.")
        except OcspUnavailable as exc:
            unavailable: dict[str, object] = {
                "checked": False,
                "status": "unavailable",
                "error": exc.detail,
                "fail_open": self.ocsp_fail_open,
            }
            if not self.ocsp_fail_open:
                exc.evidence = {**evidence, "ocsp": unavailable}
                raise
            return unavailable
        described = {"checked": verdict.status != "unchecked", **verdict.evidence()}
        if verdict.status == "revoked":
            raise CertificateRevokedOcsp(
                f"Revocado el {_iso(verdict.revocation_time)}.",
                evidence={**evidence, "ocsp": described},
            )
        return described

    @staticmethod
    def _check_signature(cert: EfirmaCertificate, signature: bytes, message: bytes) -> None:
        key = cert.x509.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureInvalid("La e.firma debe tener una llave RSA.")
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise SignatureInvalid("La firma no verifica con la llave del certificado.") from exc
