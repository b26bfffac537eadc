"""OCSP: the real HttpOcspChecker against the dev CA's responder over loopback HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from eidentity.devca import DevCa, IssuedCredential, OcspResponderServer, init_ca
from eidentity.devca.satkey import load_sat_private_key
from eidentity.efirma import (
    EfirmaVerifier,
    HttpOcspChecker,
    NullRevocationChecker,
    RevocationChecker,
    load_crl,
    load_trust_anchors,
    parse_certificate,
)
from eidentity.efirma.errors import CertificateRevokedOcsp, OcspUnavailable
from eidentity.efirma.ocsp_validate import key_hash

PASSWORD = "clave-ocsp"
MESSAGE = b"https://carpeta.example\nreto=ocsp\nnonce=ffeeddccbbaa99887766554433221100"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sign(credential: IssuedCredential, message: bytes = MESSAGE) -> bytes:
    key = load_sat_private_key(credential.key_path.read_bytes(), PASSWORD)
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCa:
    return init_ca(tmp_path_factory.mktemp("ocsp-ca"))


@pytest.fixture(scope="module")
def anchors(ca: DevCa) -> list[x509.Certificate]:
    return load_trust_anchors(ca.pem_path)


@pytest.fixture(scope="module")
def responder(ca: DevCa) -> Iterator[OcspResponderServer]:
    with OcspResponderServer(ca) as server:
        yield server


@pytest.fixture(scope="module")
def delegated_responder(ca: DevCa) -> Iterator[OcspResponderServer]:
    with OcspResponderServer(ca, delegated=True) as server:
        yield server


@pytest.fixture
def citizen(ca: DevCa) -> IssuedCredential:
    return ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ISABEL", PASSWORD)


def serve(respond: Callable[[bytes], bytes]) -> OcspResponderServer:
    return OcspResponderServer(respond)


async def verify(
    anchors: list[x509.Certificate],
    credential: IssuedCredential,
    url: str,
    *,
    fail_open: bool = False,
    crl: x509.CertificateRevocationList | None = None,
    checker: RevocationChecker | None = None,
) -> dict[str, object]:
    verifier = EfirmaVerifier(
        anchors, crl=crl, ocsp=checker or HttpOcspChecker(url, 2.0), ocsp_fail_open=fail_open
    )
    signer = await verifier.verify(
        credential.cer_path.read_bytes(), sign(credential), MESSAGE, now()
    )
    ocsp_evidence = signer.evidence["ocsp"]
    assert isinstance(ocsp_evidence, dict)
    return ocsp_evidence


async def test_good_answer_from_the_ca_is_kept_as_evidence(
    anchors: list[x509.Certificate], citizen: IssuedCredential, responder: OcspResponderServer
) -> None:
    evidence = await verify(anchors, citizen, responder.url)
    assert evidence["checked"] is True
    assert evidence["status"] == "good"
    assert "CN=AC DE PRUEBAS CARPETA" in str(evidence["responder"])
    raw = base64.b64decode(str(evidence["response_b64"]))
    stored = ocsp.load_der_ocsp_response(raw)
    assert stored.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert (
        stored.serial_number == parse_certificate(citizen.cer_path.read_bytes()).x509.serial_number
    )
    assert evidence["produced_at"] == stored.produced_at_utc.isoformat()


async def test_good_answer_from_a_delegated_responder(
    anchors: list[x509.Certificate],
    citizen: IssuedCredential,
    delegated_responder: OcspResponderServer,
) -> None:
    evidence = await verify(anchors, citizen, delegated_responder.url)
    assert evidence["status"] == "good"
    assert evidence["responder"] == "CN=RESPONDEDOR OCSP DE PRUEBAS,C=MX"


async def test_sha256_cert_ids_work_too(
    anchors: list[x509.Certificate], citizen: IssuedCredential, responder: OcspResponderServer
) -> None:
    checker = HttpOcspChecker(responder.url, hash_algorithm=hashes.SHA256())
    evidence = await verify(anchors, citizen, responder.url, checker=checker)
    assert evidence["status"] == "good"


async def test_revoked_is_refused_by_ocsp(
    ca: DevCa, anchors: list[x509.Certificate], responder: OcspResponderServer
) -> None:
    revoked = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "DIEGO", PASSWORD)
    ca.revoke(revoked.certificate_number, reason=x509.ReasonFlags.key_compromise)
    with pytest.raises(CertificateRevokedOcsp) as caught:
        await verify(anchors, revoked, responder.url)
    assert caught.value.status == 401
    assert caught.value.evidence is not None
    ocsp_evidence = caught.value.evidence["ocsp"]
    assert isinstance(ocsp_evidence, dict)
    assert ocsp_evidence["revocation_reason"] == "keyCompromise"


async def test_ocsp_catches_a_revocation_newer_than_the_crl(
    ca: DevCa, anchors: list[x509.Certificate], responder: OcspResponderServer
) -> None:
    fresh = ca.issue("GECV901105HDFRHL00", "GECV901105AB1", "VÍCTOR", PASSWORD)
    ca.crl()
    crl = load_crl(ca.directory / "crl.der")  # taken before the revocation
    ca.revoke(fresh.certificate_number)
    with pytest.raises(CertificateRevokedOcsp) as caught:
        await verify(anchors, fresh, responder.url, crl=crl)
    assert caught.value.evidence is not None
    crl_evidence = caught.value.evidence["crl"]
    assert isinstance(crl_evidence, dict)
    assert crl_evidence["status"] == "not-listed"


async def test_responder_down_fails_closed(
    ca: DevCa, anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    server = OcspResponderServer(ca).start()
    url = server.url
    server.stop()
    with pytest.raises(OcspUnavailable) as caught:
        await verify(anchors, citizen, url)
    assert caught.value.status == 503
    assert caught.value.evidence is not None
    assert caught.value.evidence["ocsp"] == {
        "checked": False,
        "status": "unavailable",
        "error": caught.value.detail,
        "fail_open": False,
    }


async def test_responder_down_fail_open_accepts_and_says_so(
    ca: DevCa, anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    server = OcspResponderServer(ca).start()
    url = server.url
    server.stop()
    evidence = await verify(anchors, citizen, url, fail_open=True)
    assert evidence["checked"] is False
    assert evidence["status"] == "unavailable"
    assert evidence["fail_open"] is True
    assert "ConnectError" in str(evidence["error"])


async def test_fail_open_does_not_excuse_a_revocation(
    ca: DevCa, anchors: list[x509.Certificate], responder: OcspResponderServer
) -> None:
    revoked = ca.issue("SABC560626MDFLRN01", "SABC560626AB1", "SABINA", PASSWORD, revoked=True)
    with pytest.raises(CertificateRevokedOcsp):
        await verify(anchors, revoked, responder.url, fail_open=True)


def _response(
    ca: DevCa,
    cert: x509.Certificate,
    signer: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    extra: list[x509.Certificate] | None = None,
) -> bytes:
    this_update = this_update or now()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=ca.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=this_update,
            next_update=next_update or this_update + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    )
    if extra:
        builder = builder.certificates(extra)
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _leaf(
    ca: DevCa, issuer_key: rsa.RSAPrivateKey, usage: x509.ObjectIdentifier
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=RESPONDEDOR FALSO"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - dt.timedelta(minutes=1))
        .not_valid_after(now() + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


async def _refused_with(
    anchors: list[x509.Certificate], citizen: IssuedCredential, respond: Callable[[bytes], bytes]
) -> str:
    with serve(respond) as server, pytest.raises(OcspUnavailable) as caught:
        await verify(anchors, citizen, server.url)
    return caught.value.detail


async def test_garbled_and_unsuccessful_answers_are_unavailable(
    anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    assert "no se pudo leer" in await _refused_with(anchors, citizen, lambda _: b"garbage")
    try_later = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    data = try_later.public_bytes(serialization.Encoding.DER)
    assert "TRY_LATER" in await _refused_with(anchors, citizen, lambda _: data)


async def test_answer_signed_by_an_unauthorised_key_is_unavailable(
    ca: DevCa,
    anchors: list[x509.Certificate],
    citizen: IssuedCredential,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cert = parse_certificate(citizen.cer_path.read_bytes()).x509
    stranger = init_ca(tmp_path_factory.mktemp("stranger"), key_size=2048)
    forged = _response(ca, cert, stranger.certificate, stranger.private_key)
    assert "autorizado" in await _refused_with(anchors, citizen, lambda _: forged)
    # A delegate issued by the right CA but without the OCSP-signing purpose is not enough.
    no_eku, no_eku_key = _leaf(ca, ca.private_key, ExtendedKeyUsageOID.CLIENT_AUTH)
    forged = _response(ca, cert, no_eku, no_eku_key, extra=[no_eku])
    assert "autorizado" in await _refused_with(anchors, citizen, lambda _: forged)
    # A delegate with the right purpose but issued by someone else is not enough either.
    foreign, foreign_key = _leaf(ca, stranger.private_key, ExtendedKeyUsageOID.OCSP_SIGNING)
    forged = _response(ca, cert, foreign, foreign_key, extra=[foreign])
    assert "autorizado" in await _refused_with(anchors, citizen, lambda _: forged)


async def test_tampered_signature_is_unavailable(
    ca: DevCa, anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    cert = parse_certificate(citizen.cer_path.read_bytes()).x509
    good = bytearray(_response(ca, cert, ca.certificate, ca.private_key))
    good[-5] ^= 0x01  # inside the signature BIT STRING
    assert "firma" in await _refused_with(anchors, citizen, lambda _: bytes(good))


async def test_answer_about_another_certificate_is_unavailable(
    ca: DevCa, anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    other = ca.issue("ROCR790513HZSBSG01", "ROCR790513AB1", "RAÚL", PASSWORD)
    other_cert = parse_certificate(other.cer_path.read_bytes()).x509
    answer = _response(ca, other_cert, ca.certificate, ca.private_key)
    assert "no corresponde" in await _refused_with(anchors, citizen, lambda _: answer)


async def test_stale_and_future_answers_are_unavailable(
    ca: DevCa, anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    cert = parse_certificate(citizen.cer_path.read_bytes()).x509
    stale = _response(
        ca,
        cert,
        ca.certificate,
        ca.private_key,
        this_update=now() - dt.timedelta(hours=3),
        next_update=now() - dt.timedelta(hours=2),
    )
    assert "vigente" in await _refused_with(anchors, citizen, lambda _: stale)
    future = _response(
        ca, cert, ca.certificate, ca.private_key, this_update=now() + dt.timedelta(hours=1)
    )
    assert "futuro" in await _refused_with(anchors, citizen, lambda _: future)


async def test_unknown_certificate_fails_closed(
    ca: DevCa, anchors: list[x509.Certificate], responder: OcspResponderServer
) -> None:
    """A certificate the CA key signed but never recorded: the responder says ``unknown``."""
    unknown = ca.issue("HEGG560427MVZRRL04", "HEGG560427AB1", "HELENA", PASSWORD)
    state_path = ca.directory / "state.json"
    state = json.loads(state_path.read_text())
    del state["issued"][unknown.certificate_number]
    state_path.write_text(json.dumps(state))
    with pytest.raises(OcspUnavailable, match="no conoce"):
        await verify(anchors, unknown, responder.url)


async def test_null_checker_records_that_nothing_was_checked(
    anchors: list[x509.Certificate], citizen: IssuedCredential
) -> None:
    evidence = await verify(anchors, citizen, "", checker=NullRevocationChecker())
    assert evidence["checked"] is False
    assert evidence["status"] == "unchecked"


async def test_responder_answers_rfc6960_get_requests_too(
    ca: DevCa, citizen: IssuedCredential, responder: OcspResponderServer
) -> None:
    cert = parse_certificate(citizen.cer_path.read_bytes()).x509
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    async with httpx.AsyncClient() as client:
        reply = await client.get(responder.url + encoded)
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert reply.headers["content-type"] == "application/ocsp-response"
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.responder_key_hash == key_hash(ca.certificate, hashes.SHA1())
