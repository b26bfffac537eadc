"""Ask an OCSP responder whether an e.firma is revoked, and keep the answer as evidence.

SAT's responder (``https://cfdi.sat.gob.mx/edofiel``) follows the RFC 5019 lightweight
profile, whose CertID hash is SHA-1; that is our default (SHA-1 here only names the
certificate, it protects nothing). Pass ``hash_algorithm=hashes.SHA256()`` for responders that
prefer it. We send no nonce (SAT's profile ignores them) and judge freshness from
thisUpdate/nextUpdate instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from eidentity.efirma.certificate import EfirmaCertificate
from eidentity.efirma.errors import OcspUnavailable
from eidentity.efirma.ocsp_validate import build_request, cert_id, single_response

OcspStatus = Literal["good", "revoked", "unknown", "unchecked"]

_STATUS: dict[ocsp.OCSPCertStatus, OcspStatus] = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class OcspVerdict:
    """What a responder said about one certificate, with the raw response for the record."""

    status: OcspStatus
    responder: str
    produced_at: datetime | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    revocation_time: datetime | None = None
    revocation_reason: str | None = None
    raw: bytes = field(default=b"", repr=False)

    def evidence(self) -> dict[str, object]:
        """A JSON-ready description, stored with the sign-in."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "status": self.status,
            "responder": self.responder,
            "produced_at": iso(self.produced_at),
            "this_update": iso(self.this_update),
            "next_update": iso(self.next_update),
            "revocation_time": iso(self.revocation_time),
            "revocation_reason": self.revocation_reason,
            "response_b64": base64.b64encode(self.raw).decode("ascii") if self.raw else None,
        }


class RevocationChecker(Protocol):
    async def check(
        self, cert: EfirmaCertificate, issuer: x509.Certificate, *, now: datetime | None = None
    ) -> OcspVerdict:
        """Return the responder's verdict or raise :class:`OcspUnavailable`."""
        ...


class NullRevocationChecker:
    """Checks nothing and says so: the evidence records ``unchecked``, never ``good``."""

    async def check(
        self, cert: EfirmaCertificate, issuer: x509.Certificate, *, now: datetime | None = None
    ) -> OcspVerdict:
        return OcspVerdict(status="unchecked", responder="none")


class HttpOcspChecker:
    """POSTs ``application/ocsp-request`` to ``url`` and believes only verified answers."""

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        hash_algorithm: hashes.HashAlgorithm | None = None,
        max_age: timedelta = timedelta(days=1),
        clock_skew: timedelta = timedelta(minutes=5),
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.hash_algorithm = hash_algorithm or hashes.SHA1()  # noqa: S303 - CertID naming only
        self.max_age = max_age
        self.clock_skew = clock_skew
        self._client = client

    async def check(
        self, cert: EfirmaCertificate, issuer: x509.Certificate, *, now: datetime | None = None
    ) -> OcspVerdict:
        now = now or datetime.now(UTC)
        target = cert_id(cert, issuer, self.hash_algorithm)
        body = await self._post(build_request(target))
        response, single, signer = single_response(
            body, target, issuer, now, max_age=self.max_age, skew=self.clock_skew
        )
        reason = single.revocation_reason
        return OcspVerdict(
            status=_STATUS[single.certificate_status],
            responder=signer.subject.rfc4514_string(),
            produced_at=response.produced_at_utc,
            this_update=single.this_update_utc,
            next_update=single.next_update_utc,
            revocation_time=single.revocation_time_utc,
            revocation_reason=reason.value if reason else None,
            raw=body,
        )

    async def _post(self, request: bytes) -> bytes:
        headers = {
            "Content-Type": "application/ocsp-request",
            "Accept": "application/ocsp-response",
        }
        try:
            if self._client is not None:
                reply = await self._client.post(
                    self.url, content=request, headers=headers, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    reply = await client.post(self.url, content=request, headers=headers)
        except httpx.HTTPError as exc:
            raise OcspUnavailable(f"No se pudo consultar el OCSP ({type(exc).__name__}).") from exc
        if reply.status_code != 200:
            raise OcspUnavailable(f"El respondedor OCSP contestó HTTP {reply.status_code}.")
        return reply.content
