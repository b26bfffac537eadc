"""Certificate shapes of the dev CA, copied from what SAT issues.

Subjects carry CN / name (2.5.4.41) / O = the holder's name, C=MX, emailAddress,
x500UniqueIdentifier = RFC and serialNumber = CURP, every text value tagged PrintableString
even when it holds Ñ, accents or ``&`` -- SAT does exactly that, and our parser must cope, so
the dev CA reproduces it: ``cryptography`` will not sign such a name, so we re-tag the subject
and sign the final ``tbsCertificate`` ourselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eidentity.efirma import der
from eidentity.efirma.tolerant import name_indexes, retag_name, split_certificate

NAME_OID = x509.ObjectIdentifier("2.5.4.41")
UNSTRUCTURED_NAME_OID = x509.ObjectIdentifier("1.2.840.113549.1.9.2")


def ca_subject(common_name: str) -> x509.Name:
    """An issuer name laid out like SAT's ("AC UAT"), naming this project, not SAT."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CARPETA CIUDADANA MX - PRUEBAS"),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, "AUTORIDAD CERTIFICADORA DE DESARROLLO"
            ),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ac-pruebas@carpeta.invalid"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "SIN DOMICILIO"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "00000"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CIUDAD DE MEXICO"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "CUAUHTEMOC"),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "CCP000000AA0"),
            x509.NameAttribute(UNSTRUCTURED_NAME_OID, "responsable: EQUIPO CARPETA"),
        ]
    )


def ca_certificate(key: rsa.RSAPrivateKey, common_name: str, now: datetime) -> x509.Certificate:
    """Self-signed root; its window starts early enough to cover "expired" test certificates."""
    name = ca_subject(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=5 * 365))
        .not_valid_after(now + timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def ocsp_signer_certificate(
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    public_key: rsa.RSAPublicKey,
    now: datetime,
) -> x509.Certificate:
    """A delegated responder (RFC 6960 §4.2.2.2): OCSPSigning EKU and ocsp-nocheck."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=RESPONDEDOR OCSP DE PRUEBAS,C=MX"))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def holder_subject(
    *, name: str, rfc_field: str, curp_field: str, email: str, csd: bool
) -> x509.Name:
    """The subject of an e.firma (no OU) or a CSD (OU = branch, no C/email, like SAT's)."""
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NAME_OID, name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
    ]
    if not csd:
        attributes += [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
        ]
    attributes += [
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, rfc_field),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, curp_field),
    ]
    if csd:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "MATRIZ"))
    return x509.Name(attributes)


def holder_builder(
    *,
    subject: x509.Name,
    ca_cert: x509.Certificate,
    public_key: rsa.RSAPublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    csd: bool,
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa(ca_cert.public_key())),
            critical=False,
        )
    )
    builder = builder.add_extension(_key_usage(efirma=not csd), critical=False)
    if csd:
        return builder
    return builder.add_extension(
        x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
        ),
        critical=False,
    )


def _key_usage(*, efirma: bool) -> x509.KeyUsage:
    """SAT's e.firma: digitalSignature, nonRepudiation, dataEncipherment, keyAgreement.

    A CSD only has the first two.
    """
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=efirma,
        key_agreement=efirma,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _rsa(key: object) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the dev CA key is RSA")
    return key


def sign_sat_style(builder: x509.CertificateBuilder, ca_key: rsa.RSAPrivateKey) -> bytes:
    """Sign, then re-tag the subject's strings as PrintableString and sign that TBS again."""
    first = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    outer, tbs = split_certificate(first)
    _, subject_at = name_indexes(tbs)
    fields = [item.raw for item in tbs]
    fields[subject_at] = retag_name(
        tbs[subject_at], to_tag=der.PRINTABLE_STRING, only_invalid=False
    )
    new_tbs = der.sequence(*fields)
    signature = ca_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
    return der.sequence(new_tbs, outer[1].raw, der.bit_string(signature))
