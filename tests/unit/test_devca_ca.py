"""The dev CA: files on disk, SAT-shaped certificates, revocation, OCSP answers, CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eidentity.curp import make_curp
from eidentity.devca import DevCa, init_ca, load_sat_private_key
from eidentity.devca.cli import dev_ca
from eidentity.devca.state import SERIAL_PREFIX
from eidentity.efirma import der, parse_certificate
from eidentity.efirma.tolerant import name_indexes, split_certificate

PASSWORD = "prueba-123"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCa:
    return init_ca(tmp_path_factory.mktemp("devca"))


def _subject_tags(data: bytes) -> list[tuple[str, int]]:
    """(OID, ASN.1 tag) of every subject attribute, in encoding order."""
    _, tbs = split_certificate(data)
    subject = tbs[name_indexes(tbs)[1]]
    pairs = []
    for rdn in subject.children():
        for atv in rdn.children():
            oid, value = atv.children()
            pairs.append((der.decode_oid(oid), value.tag))
    return pairs


def test_init_writes_the_ca_files(ca: DevCa) -> None:
    root = ca.directory
    assert {p.name for p in root.iterdir()} >= {"ca.cer", "ca.pem", "ca-key.pem", "state.json"}
    assert stat.S_IMODE((root / "ca-key.pem").stat().st_mode) == 0o600
    cert = x509.load_der_x509_certificate((root / "ca.cer").read_bytes())
    assert cert == x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "AC DE PRUEBAS CARPETA"
    )
    assert cert.public_key().key_size == 4096  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert json.loads((root / "state.json").read_text())["issued"] == {}
    with pytest.raises(FileExistsError):
        init_ca(root)
    loaded = DevCa.load(root)
    assert loaded.certificate == ca.certificate
    assert loaded.private_key.private_numbers() == ca.private_key.private_numbers()


def test_issued_efirma_looks_like_sats(ca: DevCa) -> None:
    issued = ca.issue("BAAI810809HJCRCS02", "BAAI810809AB1", "IÑAKI ÁLVAREZ", PASSWORD)
    data = issued.cer_path.read_bytes()
    assert issued.cer_path.name == "BAAI810809AB1.cer"
    assert issued.key_path.name == "BAAI810809AB1.key"
    assert stat.S_IMODE(issued.key_path.stat().st_mode) == 0o600
    # Número de certificado: 20 ASCII digits, which *are* the serial's bytes.
    number = issued.certificate_number
    assert len(number) == 20
    assert number.isdigit()
    assert number.startswith(SERIAL_PREFIX)
    cert = parse_certificate(data)
    assert cert.x509.serial_number == int.from_bytes(number.encode("ascii"), "big")
    assert (cert.kind, cert.persona, cert.certificate_number) == ("efirma", "fisica", number)
    # SAT's order and SAT's (mis-)tagging: PrintableString everywhere but the e-mail.
    printable, ia5 = der.PRINTABLE_STRING, 0x16
    assert _subject_tags(data) == [
        ("2.5.4.3", printable),
        ("2.5.4.41", printable),
        ("2.5.4.10", printable),
        ("2.5.4.6", printable),
        ("1.2.840.113549.1.9.1", ia5),
        ("2.5.4.45", printable),
        ("2.5.4.5", printable),
    ]
    usage = cert.x509.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert usage.data_encipherment
    assert usage.key_agreement
    assert not usage.key_cert_sign
    eku = cert.x509.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION}
    key = load_sat_private_key(issued.key_path.read_bytes(), PASSWORD)
    assert key.public_key().public_numbers() == cert.x509.public_key().public_numbers()  # type: ignore[union-attr]
    assert key.key_size == 2048


def test_serials_increase_and_files_never_clobber(ca: DevCa) -> None:
    first = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "DIEGO", PASSWORD)
    second = ca.issue("PICD861230HSLCRV02", "PICD861230AB1", "DIEGO", PASSWORD)
    assert int(second.certificate_number) == int(first.certificate_number) + 1
    assert first.cer_path.name == "PICD861230AB1.cer"
    assert second.cer_path.name == f"PICD861230AB1_{second.certificate_number}.cer"
    assert first.cer_path.read_bytes() != second.cer_path.read_bytes()
    state = json.loads((ca.directory / "state.json").read_text())
    assert state["issued"][second.certificate_number]["rfc"] == "PICD861230AB1"


def test_csd_has_an_ou_and_no_client_auth(ca: DevCa) -> None:
    issued = ca.issue("GECV901105HDFRHL00", "GECV901105AB1", "VÍCTOR", PASSWORD, csd=True)
    cert = parse_certificate(issued.cer_path.read_bytes())
    assert cert.kind == "csd"
    assert cert.x509.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    with pytest.raises(x509.ExtensionNotFound):
        cert.x509.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_validity_windows(ca: DevCa) -> None:
    now = dt.datetime.now(dt.UTC)
    normal = parse_certificate(
        ca.issue("ROCR790513HZSBSG01", "ROCR790513AB1", "R", PASSWORD).cer_path.read_bytes()
    )
    assert normal.not_before <= now <= normal.not_after
    assert normal.not_after - normal.not_before > dt.timedelta(days=4 * 365 - 1)
    expired = parse_certificate(
        ca.issue(
            "ROCR790513HZSBSG01", "ROCR790513AB1", "R", PASSWORD, expired=True
        ).cer_path.read_bytes()
    )
    assert expired.not_after < now
    future = parse_certificate(
        ca.issue(
            "ROCR790513HZSBSG01", "ROCR790513AB1", "R", PASSWORD, not_yet_valid=True
        ).cer_path.read_bytes()
    )
    assert future.not_before > now
    with pytest.raises(ValueError, match="both"):
        ca.issue("ROCR790513HZSBSG01", "ROCR790513AB1", "R", PASSWORD, expired=True,
                 not_yet_valid=True)  # fmt: skip


def test_persona_moral_subject(ca: DevCa) -> None:
    issued = ca.issue(
        "SABC560626MDFLRN01", "SABC560626AB1", "ACME & ASOCIADOS SC", PASSWORD,
        company_rfc="AAS010101AB1",
    )  # fmt: skip
    cert = parse_certificate(issued.cer_path.read_bytes())
    raw = {a.oid.dotted_string: a.value for a in cert.x509.subject}
    assert raw["2.5.4.45"] == "AAS010101AB1 / SABC560626AB1"
    assert raw["2.5.4.5"] == " / SABC560626MDFLRN01"
    assert (cert.persona, cert.company_rfc, cert.rfc) == ("moral", "AAS010101AB1", "SABC560626AB1")


@pytest.mark.parametrize(
    ("curp", "rfc", "company", "match"),
    [
        ("NO-ES-CURP", "SABC560626AB1", None, "CURP"),
        ("SABC560626MDFLRN01", "SAB", None, "RFC"),
        ("SABC560626MDFLRN01", "SABC560626AB1", "AAAA010101AB1", "moral"),
    ],
)
def test_issue_refuses_malformed_identifiers(
    ca: DevCa, curp: str, rfc: str, company: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ca.issue(curp, rfc, "X", PASSWORD, company_rfc=company)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_accepts_the_chain(ca: DevCa, tmp_path: Path) -> None:
    issued = ca.issue("HEGG560427MVZRRL04", "HEGG560427AB1", "HELENA MUÑOZ", PASSWORD)
    pem = tmp_path / "leaf.pem"
    # The name is mis-tagged on purpose, as SAT does; openssl reads it as-is.
    subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(issued.cer_path), "-out", str(pem)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca.pem_path), str(pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_revoke_and_crl(ca: DevCa) -> None:
    issued = ca.issue("BOXW310820HNERXN09", "BOXW310820AB1", "W", PASSWORD)
    serial = parse_certificate(issued.cer_path.read_bytes()).x509.serial_number
    ca.revoke(serial, reason=x509.ReasonFlags.key_compromise)  # by integer serial
    data = ca.crl()
    assert (ca.directory / "crl.der").read_bytes() == data
    crl = x509.load_der_x509_crl(data)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.certificate.subject
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.next_update_utc is not None
    with pytest.raises(KeyError):
        ca.revoke("30001000000599999999")


def _ask(ca: DevCa, cert: x509.Certificate, issuer: x509.Certificate | None = None) -> bytes:
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer or ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    return ca.ocsp_response(request)


def test_ocsp_answers_each_status(ca: DevCa, tmp_path: Path) -> None:
    good = ca.issue("GECV901105HDFRHL00", "GECV901105AB1", "V", PASSWORD)
    bad = ca.issue("GECV901105HDFRHL00", "GECV901105AB1", "V", PASSWORD, revoked=True)
    good_cert = parse_certificate(good.cer_path.read_bytes()).x509
    bad_cert = parse_certificate(bad.cer_path.read_bytes()).x509
    answer = ocsp.load_der_ocsp_response(_ask(ca, good_cert))
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.next_update_utc is not None
    answer = ocsp.load_der_ocsp_response(_ask(ca, bad_cert))
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc is not None
    other = init_ca(tmp_path / "other", key_size=2048)
    stranger = parse_certificate(
        other.issue("GECV901105HDFRHL00", "GECV901105AB1", "V", PASSWORD).cer_path.read_bytes()
    ).x509
    answer = ocsp.load_der_ocsp_response(_ask(ca, stranger, other.certificate))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    malformed = ocsp.load_der_ocsp_response(ca.ocsp_response(b"nope"))
    assert malformed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_delegated_ocsp_signer(ca: DevCa) -> None:
    signer, key = ca.ocsp_signer()
    assert signer.issuer == ca.certificate.subject
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert stat.S_IMODE((ca.directory / "ocsp-key.pem").stat().st_mode) == 0o600
    again, _ = ca.ocsp_signer()
    assert again == signer  # made once, then reused
    assert key.key_size == 2048


# --- CLI -----------------------------------------------------------------------------------

VALID_CURP = make_curp("GOMA", dt.date(1990, 4, 2), "M", "JC", "MRR")


def test_cli_init_issue_revoke_crl(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "ac"
    result = runner.invoke(dev_ca, ["init", str(root), "--key-size", "2048"])
    assert result.exit_code == 0, result.output
    assert "ca.pem" in result.output
    again = runner.invoke(dev_ca, ["init", str(root)])
    assert again.exit_code != 0
    args = ["issue", str(root), "--curp", VALID_CURP.lower(), "--rfc", "GOMA900402AB1",
            "--name", "ANA GÓMEZ", "--password", PASSWORD]  # fmt: skip
    result = runner.invoke(dev_ca, args)
    assert result.exit_code == 0, result.output
    cert = parse_certificate((root / "GOMA900402AB1.cer").read_bytes())
    assert cert.curp == VALID_CURP
    assert cert.certificate_number in result.output
    result = runner.invoke(dev_ca, [*args, "--csd"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(dev_ca, ["revoke", str(root), cert.certificate_number])
    assert result.exit_code == 0, result.output
    result = runner.invoke(dev_ca, ["crl", str(root)])
    assert result.exit_code == 0, result.output
    crl = x509.load_der_x509_crl((root / "crl.der").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.x509.serial_number) is not None


def test_cli_explains_a_bad_curp(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "ac"
    assert runner.invoke(dev_ca, ["init", str(root), "--key-size", "2048"]).exit_code == 0
    wrong_digit = VALID_CURP[:-1] + str((int(VALID_CURP[-1]) + 1) % 10)
    result = runner.invoke(
        dev_ca,
        ["issue", str(root), "--curp", wrong_digit, "--rfc", "GOMA900402AB1", "--name", "A",
         "--password", PASSWORD],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "verificador" in result.output
    assert not (root / "GOMA900402AB1.cer").exists()


def test_cli_needs_an_initialised_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(dev_ca, ["crl", str(tmp_path / "nada")])
    assert result.exit_code == 1
    assert "dev-ca init" in result.output
