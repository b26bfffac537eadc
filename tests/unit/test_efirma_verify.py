"""EfirmaVerifier end to end with dev-CA certificates and SAT's real (expired) test files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from eidentity.devca import DevCa, IssuedCredential, init_ca, load_sat_private_key
from eidentity.efirma import EfirmaVerifier, load_crl, load_trust_anchors, parse_certificate
from eidentity.efirma.errors import (
    CertificateExpired,
    CertificateNotEfirma,
    CertificateNotYetValid,
    CertificateRevokedCrl,
    CertificateUnknownIssuer,
    CrlUnavailable,
    EfirmaError,
    SignatureInvalid,
)
from tests.paths import SAT_DIR

PASSWORD = "contraseña-de-prueba"
MESSAGE = b"https://carpeta.example\nreto=abc123\nnonce=00112233445566778899aabbccddeeff"


def load_crl_bytes(data: bytes) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(data)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sign(credential: IssuedCredential, message: bytes = MESSAGE, password: str = PASSWORD) -> bytes:
    key = load_sat_private_key(credential.key_path.read_bytes(), password)
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCa:
    return init_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def impostor_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCa:
    """Same name as ``ca``, different key: only the signature check can tell them apart."""
    return init_ca(tmp_path_factory.mktemp("impostor"), key_size=2048)


@pytest.fixture(scope="module")
def citizen(ca: DevCa) -> IssuedCredential:
    return ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ISABEL BAÑOS ÁVILA", PASSWORD)


@pytest.fixture(scope="module")
def verifier(ca: DevCa) -> EfirmaVerifier:
    return EfirmaVerifier(load_trust_anchors(ca.pem_path))


async def test_dev_efirma_verifies_end_to_end(
    verifier: EfirmaVerifier, citizen: IssuedCredential
) -> None:
    signer = await verifier.verify(citizen.cer_path.read_bytes(), sign(citizen), MESSAGE, now())
    assert (signer.curp, signer.rfc, signer.company_rfc) == (
        "BAAI810809HJCRCS02",
        "BAAI810809AB1",
        None,
    )
    assert signer.name == "ISABEL BAÑOS ÁVILA"
    assert signer.certificate_number == citizen.certificate_number
    assert signer.certificate.persona == "fisica"
    assert signer.evidence["certificate_number"] == citizen.certificate_number
    assert "AC DE PRUEBAS CARPETA" in str(signer.evidence["issuer"])
    assert signer.evidence["crl"] == {"checked": False, "reason": "no CRL configured"}
    assert signer.evidence["ocsp"] == {"checked": False, "reason": "no OCSP responder configured"}


async def test_csd_is_refused_as_not_efirma(ca: DevCa, verifier: EfirmaVerifier) -> None:
    csd = ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "ISABEL", PASSWORD, csd=True)
    with pytest.raises(CertificateNotEfirma) as caught:
        await verifier.verify(csd.cer_path.read_bytes(), sign(csd), MESSAGE, now())
    assert caught.value.status == 403


async def test_expired_is_refused(ca: DevCa, verifier: EfirmaVerifier) -> None:
    old = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "DIEGO", PASSWORD, expired=True)
    with pytest.raises(CertificateExpired) as caught:
        await verifier.verify(old.cer_path.read_bytes(), sign(old), MESSAGE, now())
    assert caught.value.status == 401


async def test_expired_is_accepted_by_a_clock_inside_its_window(
    ca: DevCa, verifier: EfirmaVerifier
) -> None:
    """What the SAT README predicts for its files, shown with an issuer we do hold."""
    old = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "DIEGO", PASSWORD, expired=True)
    window = parse_certificate(old.cer_path.read_bytes())
    inside = window.not_before + dt.timedelta(days=1)
    signer = await verifier.verify(old.cer_path.read_bytes(), sign(old), MESSAGE, inside)
    assert signer.curp == "PICD861230HSLCRV02"


async def test_not_yet_valid_is_refused(ca: DevCa, verifier: EfirmaVerifier) -> None:
    early = ca.issue("GECV901105HDFRHL00", "GECV901105AB1", "VÍCTOR", PASSWORD, not_yet_valid=True)
    with pytest.raises(CertificateNotYetValid):
        await verifier.verify(early.cer_path.read_bytes(), sign(early), MESSAGE, now())


async def test_certificate_from_another_dev_ca_is_unknown_issuer(
    verifier: EfirmaVerifier, impostor_ca: DevCa, tmp_path: Path
) -> None:
    same_name = impostor_ca.issue("ROCR790513HZSBSG01", "ROCR790513AB1", "RAÚL", PASSWORD)
    with pytest.raises(CertificateUnknownIssuer) as caught:
        await verifier.verify(same_name.cer_path.read_bytes(), sign(same_name), MESSAGE, now())
    assert caught.value.status == 401
    other = init_ca(tmp_path / "otra", common_name="AC DE OTRO LADO", key_size=2048)
    stranger = other.issue("ROCR790513HZSBSG01", "ROCR790513AB1", "RAÚL", PASSWORD)
    with pytest.raises(CertificateUnknownIssuer, match="AC DE OTRO LADO"):
        await verifier.verify(stranger.cer_path.read_bytes(), sign(stranger), MESSAGE, now())


async def test_wrong_signatures_are_refused(
    ca: DevCa, verifier: EfirmaVerifier, citizen: IssuedCredential
) -> None:
    der = citizen.cer_path.read_bytes()
    with pytest.raises(SignatureInvalid):
        await verifier.verify(der, sign(citizen, b"otro mensaje"), MESSAGE, now())
    with pytest.raises(SignatureInvalid):
        await verifier.verify(der, b"\x00" * 256, MESSAGE, now())
    with pytest.raises(SignatureInvalid):
        await verifier.verify(der, sign(citizen), MESSAGE + b" ", now())
    someone_else = ca.issue("SABC560626MDFLRN01", "SABC560626AB1", "SABINA", PASSWORD)
    with pytest.raises(SignatureInvalid):
        await verifier.verify(der, sign(someone_else), MESSAGE, now())
    # PSS over the right message with the right key is still not what the protocol asks for.
    key = load_sat_private_key(citizen.key_path.read_bytes(), PASSWORD)
    pss = key.sign(
        MESSAGE,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    with pytest.raises(SignatureInvalid):
        await verifier.verify(der, pss, MESSAGE, now())


async def test_persona_moral_signs_in_as_its_representative(
    ca: DevCa, verifier: EfirmaVerifier
) -> None:
    moral = ca.issue(
        "HEGG560427MVZRRL04",
        "HEGG560427AB1",
        "COOPERATIVA LA ESPERANZA SC DE RL",
        PASSWORD,
        company_rfc="CES010101AB1",
    )
    assert moral.cer_path.name == "CES010101AB1.cer"
    signer = await verifier.verify(moral.cer_path.read_bytes(), sign(moral), MESSAGE, now())
    assert signer.curp == "HEGG560427MVZRRL04"
    assert signer.rfc == "HEGG560427AB1"
    assert signer.company_rfc == "CES010101AB1"
    assert signer.certificate.persona == "moral"
    assert signer.name == "COOPERATIVA LA ESPERANZA SC DE RL"


async def test_revoked_is_refused_by_the_crl(ca: DevCa, citizen: IssuedCredential) -> None:
    revoked = ca.issue("BOXW310820HNERXN09", "BOXW310820AB1", "WENDY", PASSWORD, revoked=True)
    ca.crl()
    crl = load_crl(ca.directory / "crl.der")
    verifier = EfirmaVerifier(load_trust_anchors(ca.pem_path), crl=crl)
    with pytest.raises(CertificateRevokedCrl) as caught:
        await verifier.verify(revoked.cer_path.read_bytes(), sign(revoked), MESSAGE, now())
    assert caught.value.status == 401
    assert caught.value.evidence is not None
    assert caught.value.evidence["crl"]["status"] == "revoked"  # type: ignore[index]
    # The same CRL lets a certificate it does not list through, and says so in the evidence.
    signer = await verifier.verify(citizen.cer_path.read_bytes(), sign(citizen), MESSAGE, now())
    crl_evidence = signer.evidence["crl"]
    assert isinstance(crl_evidence, dict)
    assert crl_evidence["checked"] is True
    assert crl_evidence["status"] == "not-listed"
    assert crl_evidence["this_update"] == crl.last_update_utc.isoformat()


async def test_stale_crl_fails_closed(ca: DevCa, citizen: IssuedCredential) -> None:
    ca.crl()  # valid for one day
    verifier = EfirmaVerifier(
        load_trust_anchors(ca.pem_path), crl=load_crl(ca.directory / "crl.der")
    )
    later = now() + dt.timedelta(days=3)
    with pytest.raises(CrlUnavailable) as caught:
        await verifier.verify(citizen.cer_path.read_bytes(), sign(citizen), MESSAGE, later)
    assert caught.value.status == 503


def test_crl_not_signed_by_an_anchor_is_a_configuration_error(
    ca: DevCa, impostor_ca: DevCa
) -> None:
    impostor_crl = load_crl_bytes(impostor_ca.crl())
    with pytest.raises(ValueError, match="not signed by any trust anchor"):
        EfirmaVerifier(load_trust_anchors(ca.pem_path), crl=impostor_crl)


async def test_crl_of_another_anchor_is_recorded_as_not_applicable(
    ca: DevCa, impostor_ca: DevCa, citizen: IssuedCredential, tmp_path: Path
) -> None:
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(ca.pem_path.read_bytes() + impostor_ca.pem_path.read_bytes())
    anchors = load_trust_anchors(bundle)
    assert len(anchors) == 2
    verifier = EfirmaVerifier(anchors, crl=load_crl_bytes(impostor_ca.crl()))
    signer = await verifier.verify(citizen.cer_path.read_bytes(), sign(citizen), MESSAGE, now())
    assert signer.evidence["crl"] == {
        "checked": False,
        "reason": "the configured CRL covers another issuer",
    }


async def test_checks_run_in_the_documented_order(ca: DevCa, verifier: EfirmaVerifier) -> None:
    """kind, issuer, validity, signature, then revocation (a bare .cer triggers no lookup)."""
    old_csd = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "D", PASSWORD, csd=True, expired=True)
    with pytest.raises(CertificateNotEfirma):
        await verifier.verify(old_csd.cer_path.read_bytes(), b"", MESSAGE, now())
    revoked = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "D", PASSWORD, revoked=True)
    ca.crl()
    with_crl = EfirmaVerifier(
        load_trust_anchors(ca.pem_path), crl=load_crl(ca.directory / "crl.der")
    )
    with pytest.raises(SignatureInvalid):
        await with_crl.verify(revoked.cer_path.read_bytes(), b"bad", MESSAGE, now())
    with pytest.raises(CertificateRevokedCrl):
        await with_crl.verify(revoked.cer_path.read_bytes(), sign(revoked), MESSAGE, now())
    expired_revoked = ca.issue(
        "PICD861230HSLCRV02", "PICD861230AB1", "D", PASSWORD, expired=True, revoked=True
    )
    ca.crl()
    with_crl = EfirmaVerifier(
        load_trust_anchors(ca.pem_path), crl=load_crl(ca.directory / "crl.der")
    )
    with pytest.raises(CertificateExpired):
        await with_crl.verify(expired_revoked.cer_path.read_bytes(), b"bad", MESSAGE, now())


async def test_naive_clock_is_a_programming_error(
    verifier: EfirmaVerifier, citizen: IssuedCredential
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await verifier.verify(
            citizen.cer_path.read_bytes(),
            sign(citizen),
            MESSAGE,
            dt.datetime.now(),
        )


# --- SAT's real files: their CA is absent, so the issuer check is where they must stop. ---

SAT_EFIRMAS = ["fiel_cacx7605101p8", "fiel_funk671228ph6", "fiel_kaho641101b39",
               "fiel_moral_aaa010101aaa"]  # fmt: skip
needs_sat = pytest.mark.skipif(not SAT_DIR.is_dir(), reason="SAT fixtures not present")


def _sat_signature(stem: str) -> tuple[bytes, bytes]:
    key = load_sat_private_key((SAT_DIR / f"{stem}.key").read_bytes(), "12345678a")
    return (SAT_DIR / f"{stem}.cer").read_bytes(), key.sign(
        MESSAGE, padding.PKCS1v15(), hashes.SHA256()
    )


@needs_sat
@pytest.mark.parametrize("stem", SAT_EFIRMAS)
async def test_sat_efirma_today_is_refused_as_unknown_issuer(
    stem: str, verifier: EfirmaVerifier
) -> None:
    """Issuer runs before validity: with SAT's test CA absent, the refusal is unknown-issuer.

    (They are expired too; with an issuer we trust that is what would be reported -- see
    ``test_expired_is_refused`` -- but no trust store here can hold "AC UAT".)
    """
    der, signature = _sat_signature(stem)
    assert parse_certificate(der).not_after < now()
    with pytest.raises(CertificateUnknownIssuer, match=r"AC UAT|A\.C\. 2 de pruebas"):
        await verifier.verify(der, signature, MESSAGE, now())
    empty = EfirmaVerifier([])
    with pytest.raises(CertificateUnknownIssuer):
        await empty.verify(der, signature, MESSAGE, now())


@needs_sat
@pytest.mark.parametrize("stem", SAT_EFIRMAS)
async def test_sat_efirma_inside_its_window_still_needs_its_issuer(
    stem: str, verifier: EfirmaVerifier
) -> None:
    der, signature = _sat_signature(stem)
    inside = parse_certificate(der).not_before + dt.timedelta(days=30)
    with pytest.raises(CertificateUnknownIssuer):
        await verifier.verify(der, signature, MESSAGE, inside)


@needs_sat
async def test_sat_csd_is_refused_as_not_efirma(verifier: EfirmaVerifier) -> None:
    der, signature = _sat_signature("csd_cacx7605101p8")
    with pytest.raises(CertificateNotEfirma):
        await verifier.verify(der, signature, MESSAGE, now())


def test_trust_anchor_files(ca: DevCa, tmp_path: Path) -> None:
    assert load_trust_anchors(ca.cer_path)[0] == ca.certificate  # a lone DER certificate
    assert load_trust_anchors(ca.pem_path)[0] == ca.certificate
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(ValueError):
        load_trust_anchors(empty)


def test_crl_files_in_der_and_pem(ca: DevCa, tmp_path: Path) -> None:
    der = ca.crl()
    pem = tmp_path / "crl.pem"
    pem.write_bytes(load_crl_bytes(der).public_bytes(serialization.Encoding.PEM))
    assert load_crl(ca.directory / "crl.der") == load_crl(pem)


def test_every_refusal_is_an_efirma_error() -> None:
    for error in (CertificateExpired, CertificateUnknownIssuer, SignatureInvalid):
        assert issubclass(error, EfirmaError)
