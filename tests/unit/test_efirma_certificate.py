"""parse_certificate on SAT's real test files and on dev-CA certificates."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eidentity.devca import DevCa, init_ca, load_sat_private_key
from eidentity.efirma import der, parse_certificate
from eidentity.efirma.errors import CertificateUnparseable
from tests.paths import SAT_DIR

SAT_PASSWORD = "12345678a"

# file stem: (kind, persona, rfc, company_rfc, curp, número de certificado, not_after date)
SAT_FILES = {
    "fiel_cacx7605101p8": (
        "efirma", "fisica", "CACX7605101P8", None, "CACX760510MGTSHC04",
        "30001000000400002300", dt.date(2023, 5, 27),
    ),
    "fiel_funk671228ph6": (
        "efirma", "fisica", "FUNK671228PH6", None, "FUNK671228MCLNLR05",
        "30001000000400002302", dt.date(2023, 5, 27),
    ),
    "fiel_kaho641101b39": (
        "efirma", "fisica", "KAHO641101B39", None, "KAHO641101HNTLKS06",
        "30001000000400002305", dt.date(2023, 5, 27),
    ),
    "fiel_moral_aaa010101aaa": (
        "efirma", "moral", "HEGT7610034S2", "AAA010101AAA", "HEGT761003MDFRNN09",
        "30001000000300023685", dt.date(2021, 5, 15),
    ),
    "csd_cacx7605101p8": (
        "csd", "fisica", "CACX7605101P8", None, "CACX760510MGTSHC04",
        "30001000000400002451", dt.date(2023, 6, 17),
    ),
}  # fmt: skip

pytestmark = pytest.mark.skipif(not SAT_DIR.is_dir(), reason="SAT fixtures not present")


def _sat(stem: str, suffix: str) -> bytes:
    return (SAT_DIR / f"{stem}.{suffix}").read_bytes()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCa:
    return init_ca(tmp_path_factory.mktemp("ca"), key_size=2048)


@pytest.mark.parametrize("stem", sorted(SAT_FILES))
def test_sat_files_read_like_the_readme_says(stem: str) -> None:
    kind, persona, rfc, company_rfc, curp, number, not_after = SAT_FILES[stem]
    cert = parse_certificate(_sat(stem, "cer"))
    assert (cert.kind, cert.persona) == (kind, persona)
    assert (cert.rfc, cert.company_rfc, cert.curp) == (rfc, company_rfc, curp)
    assert cert.certificate_number == number
    assert cert.not_after.date() == not_after
    assert cert.not_after.utcoffset() == dt.timedelta(0)
    assert cert.not_before < cert.not_after
    assert cert.name
    # Raw pieces are the CA's own bytes (these files need no re-tagging).
    assert cert.tbs_der == cert.x509.tbs_certificate_bytes
    assert cert.der == _sat(stem, "cer")


def test_moral_certificate_names_the_company() -> None:
    cert = parse_certificate(_sat("fiel_moral_aaa010101aaa", "cer"))
    assert cert.name == "ACCEM SERVICIOS EMPRESARIALES SC"


@pytest.mark.parametrize("stem", sorted(SAT_FILES))
def test_sat_keys_open_and_match_their_certificate(stem: str) -> None:
    cert = parse_certificate(_sat(stem, "cer"))
    key = load_sat_private_key(_sat(stem, "key"), SAT_PASSWORD)
    public = cert.x509.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    assert key.public_key().public_numbers() == public.public_numbers()
    message = f"origin=https://carpeta.example;challenge={stem}".encode()
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_sat_key_refuses_a_wrong_password() -> None:
    with pytest.raises(ValueError):
        load_sat_private_key(_sat("fiel_cacx7605101p8", "key"), "12345678b")


@pytest.mark.parametrize(
    "data",
    [b"", b"not a certificate", b"\x30\x03\x02\x01\x01", b"\x30\x82\xff\xff"],
)
def test_garbage_is_unparseable(data: bytes) -> None:
    with pytest.raises(CertificateUnparseable) as caught:
        parse_certificate(data)
    assert caught.value.status == 400


def test_pem_is_not_accepted_in_place_of_der() -> None:
    cert = parse_certificate(_sat("fiel_cacx7605101p8", "cer"))
    with pytest.raises(CertificateUnparseable):
        parse_certificate(cert.x509.public_bytes(Encoding.PEM))


def test_certificate_without_curp_and_rfc_is_unparseable() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SIN DATOS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateUnparseable, match="RFC y CURP"):
        parse_certificate(cert.public_bytes(Encoding.DER))


def test_mis_tagged_printable_strings_are_tolerated(ca: DevCa) -> None:
    issued = ca.issue("BOXW310820HNERXN09", "BOXW310820AB1", "JOSÉ MUÑOZ & CÍA", "clave-123")
    data = issued.cer_path.read_bytes()
    # cryptography alone refuses SAT-style names with Ñ/&/accents tagged PrintableString...
    with pytest.raises(ValueError):
        _ = x509.load_der_x509_certificate(data).subject
    # ...we read them, and keep the CA-signed bytes untouched for signature checks.
    cert = parse_certificate(data)
    assert cert.name == "JOSÉ MUÑOZ & CÍA"
    assert (cert.rfc, cert.curp, cert.kind) == ("BOXW310820AB1", "BOXW310820HNERXN09", "efirma")
    assert cert.tbs_der != cert.x509.tbs_certificate_bytes  # the readable copy was re-tagged
    assert der.read_one(data).children()[0].raw == cert.tbs_der


def test_certificate_number_falls_back_to_decimal_for_non_ascii_serials() -> None:
    from eidentity.efirma.certificate import certificate_number

    assert certificate_number(int.from_bytes(b"30001000000400002300", "big")) == (
        "30001000000400002300"
    )
    assert certificate_number(0xFFEE) == str(0xFFEE)


@pytest.mark.parametrize(
    ("usages", "kind"),
    [
        (None, "csd"),
        ([ExtendedKeyUsageOID.EMAIL_PROTECTION], "csd"),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], "efirma"),
    ],
)
def test_without_ou_only_client_auth_makes_an_efirma(
    ca: DevCa, usages: list[x509.ObjectIdentifier] | None, kind: str
) -> None:
    """No OU is not enough: a certificate lacking clientAuth is treated as a CSD."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "X"),
                    x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "BOXW310820AB1"),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "BOXW310820HNERXN09"),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca.private_key, hashes.SHA256())
    assert parse_certificate(cert.public_bytes(Encoding.DER)).kind == kind


#: Corrupt names can trip cryptography's "attribute length" UserWarning; not our concern here.
_quiet = pytest.mark.filterwarnings("ignore::UserWarning")


@_quiet
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_unparseable(data: bytes) -> None:
    with contextlib.suppress(CertificateUnparseable):
        parse_certificate(data)


@_quiet
@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=1492), st.integers(min_value=1, max_value=255))
def test_corrupted_sat_certificate_parses_or_is_unparseable(position: int, flip: int) -> None:
    data = bytearray(_sat("fiel_cacx7605101p8", "cer"))
    data[position] ^= flip
    with contextlib.suppress(CertificateUnparseable):
        parse_certificate(bytes(data))
