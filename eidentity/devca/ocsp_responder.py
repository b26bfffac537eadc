"""An OCSP responder for the dev CA, plus a tiny HTTP server for it.

It answers the way a real CA responder does (RFC 6960): CertIDs for another issuer get
``unauthorized``, unknown serials ``unknown``, revoked ones ``revoked`` with time and reason,
signed by the CA or by a delegated OCSP-signing certificate. Tests point the real
:class:`~eidentity.efirma.ocsp.HttpOcspChecker` at it over loopback.
"""

from __future__ import annotations

import base64
import functools
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from eidentity.efirma.ocsp_validate import key_hash

Status = Literal["good", "revoked", "unknown"]

_CERT_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass(frozen=True)
class SerialStatus:
    status: Status
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


@dataclass(frozen=True)
class ResponderKeys:
    """Who the responses are for (the CA) and who signs them (the CA or a delegate)."""

    ca_cert: x509.Certificate
    ca_subject_der: bytes
    signer_cert: x509.Certificate
    signer_key: rsa.RSAPrivateKey


def answer(
    request_der: bytes,
    keys: ResponderKeys,
    lookup: Callable[[int], SerialStatus],
    now: datetime,
    validity: timedelta = timedelta(hours=1),
) -> bytes:
    """DER OCSPResponse for ``request_der``."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    algorithm = request.hash_algorithm
    name_hash = hashes.Hash(algorithm)
    name_hash.update(keys.ca_subject_der)
    if request.issuer_name_hash != name_hash.finalize() or request.issuer_key_hash != key_hash(
        keys.ca_cert, algorithm
    ):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    found = lookup(request.serial_number)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash,
        issuer_key_hash=request.issuer_key_hash,
        serial_number=request.serial_number,
        algorithm=algorithm,
        cert_status=_CERT_STATUS[found.status],
        this_update=now,
        next_update=now + validity,
        revocation_time=found.revoked_at if found.status == "revoked" else None,
        revocation_reason=found.reason if found.status == "revoked" else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, keys.signer_cert)
    if keys.signer_cert is not keys.ca_cert:
        builder = builder.certificates([keys.signer_cert])
    for extension in request.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            builder = builder.add_extension(extension.value, critical=False)
    response = builder.sign(keys.signer_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


class OcspSource(Protocol):
    def ocsp_response(self, request_der: bytes, *, delegated: bool = False) -> bytes: ...


class OcspResponderServer:
    """Serve a dev CA's OCSP answers over HTTP (POST, and RFC 6960 GET) on a thread.

    ``source`` is a :class:`~eidentity.devca.ca.DevCa` or any ``bytes -> bytes`` callable
    (tests use the latter to serve deliberately wrong answers).
    """

    def __init__(
        self,
        source: OcspSource | Callable[[bytes], bytes],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delegated: bool = False,
    ) -> None:
        if callable(source):
            respond = source
        else:
            respond = functools.partial(source.ocsp_response, delegated=delegated)
        self._server = ThreadingHTTPServer((host, port), _handler(respond))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> OcspResponderServer:
        # A short poll keeps stop() quick; tests start and stop many responders.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OcspResponderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _handler(respond: Callable[[bytes], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._reply(respond(self.rfile.read(length)))

        def do_GET(self) -> None:
            encoded = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
            try:
                request = base64.b64decode(encoded, validate=True)
            except ValueError:
                request = b""
            self._reply(respond(request))

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests and the demo do not need an access log on stderr."""

    return Handler
