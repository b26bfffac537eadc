"""The dev CA writes .key files in SAT's exact format, and our DER helpers are sound."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key
from hypothesis import given
from hypothesis import strategies as st

from eidentity.devca.satkey import (
    OID_DES_EDE3_CBC,
    OID_PBES2,
    OID_PBKDF2,
    describe_encryption,
    encrypt_private_key,
    load_sat_private_key,
)
from eidentity.efirma import der
from tests.paths import SAT_DIR

SAT_KEYS = sorted(SAT_DIR.glob("*.key")) if SAT_DIR.is_dir() else []


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_cryptography_opens_our_key(key: rsa.RSAPrivateKey) -> None:
    data = encrypt_private_key(key, "contraseña ñ")
    opened = load_der_private_key(data, password="contraseña ñ".encode())
    assert isinstance(opened, rsa.RSAPrivateKey)
    assert opened.private_numbers() == key.private_numbers()
    assert load_sat_private_key(data, "contraseña ñ").private_numbers() == key.private_numbers()


def test_wrong_or_empty_password(key: rsa.RSAPrivateKey) -> None:
    data = encrypt_private_key(key, "correcta")
    with pytest.raises(ValueError):
        load_sat_private_key(data, "incorrecta")
    with pytest.raises(ValueError, match="password"):
        encrypt_private_key(key, "")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_cli_opens_our_key(key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    """OpenSSL 3 keeps des-ede3-cbc in the default provider: no ``-provider legacy``."""
    path = tmp_path / "k.key"
    path.write_bytes(encrypt_private_key(key, "12345678a"))
    result = subprocess.run(
        ["openssl", "pkcs8", "-inform", "DER", "-in", str(path), "-passin", "pass:12345678a"],
        capture_output=True,
        check=True,
    )
    opened = serialization.load_pem_private_key(result.stdout, None)
    assert isinstance(opened, rsa.RSAPrivateKey)
    assert opened.private_numbers() == key.private_numbers()
    wrong = subprocess.run(
        ["openssl", "pkcs8", "-inform", "DER", "-in", str(path), "-passin", "pass:nope"],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0


@pytest.mark.skipif(not SAT_KEYS, reason="SAT fixtures not present")
@pytest.mark.parametrize("sat_key", SAT_KEYS, ids=lambda p: p.stem)
def test_same_algorithms_and_parameters_as_sat(key: rsa.RSAPrivateKey, sat_key: Path) -> None:
    ours = describe_encryption(encrypt_private_key(key, "x"))
    theirs = describe_encryption(sat_key.read_bytes())
    assert ours == theirs
    assert ours == {
        "scheme": OID_PBES2,  # 1.2.840.113549.1.5.13
        "kdf": OID_PBKDF2,  # 1.2.840.113549.1.5.12
        "salt_length": 8,
        "iterations": 2048,
        "kdf_extra_fields": 0,  # no keyLength, no prf: HMAC-SHA1 by default
        "cipher": OID_DES_EDE3_CBC,  # 1.2.840.113549.3.7
        "iv_length": 8,
    }


@pytest.mark.skipif(not SAT_KEYS, reason="SAT fixtures not present")
def test_a_sat_key_rewritten_by_us_has_the_same_size_and_opens() -> None:
    original = SAT_KEYS[0].read_bytes()
    sat_key = load_sat_private_key(original, "12345678a")
    rewritten = encrypt_private_key(sat_key, "12345678a")
    assert len(rewritten) == len(original)
    assert load_sat_private_key(rewritten, "12345678a").private_numbers() == (
        sat_key.private_numbers()
    )


def test_salt_and_iv_make_the_output_deterministic(key: rsa.RSAPrivateKey) -> None:
    one = encrypt_private_key(key, "p", salt=b"12345678", iv=b"abcdefgh")
    assert one == encrypt_private_key(key, "p", salt=b"12345678", iv=b"abcdefgh")
    assert one != encrypt_private_key(key, "p")
    with pytest.raises(ValueError, match="IV"):
        encrypt_private_key(key, "p", iv=b"short")


@given(st.integers(min_value=0, max_value=0x7F), st.binary(max_size=70000))
def test_der_encode_then_read_round_trips(low_tag: int, content: bytes) -> None:
    tag = low_tag & ~0x1F | (low_tag & 0x1F if low_tag & 0x1F != 0x1F else 0x1E)
    encoded = der.encode(tag, content)
    item = der.read_one(encoded)
    assert (item.tag, item.content, item.raw) == (tag, content, encoded)


@given(
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=0, max_value=39),
    st.lists(st.integers(min_value=0, max_value=2**64), max_size=8),
)
def test_oid_encode_then_decode_round_trips(first: int, second: int, rest: list[int]) -> None:
    dotted = ".".join(str(arc) for arc in [first, second, *rest])
    assert der.decode_oid(der.read_one(der.object_identifier(dotted))) == dotted


def test_der_reader_rejects_what_der_forbids() -> None:
    for bad in (
        b"\x30",
        b"\x30\x80\x00\x00",
        b"\x04\x81\x01\x00",
        b"\x04\x02\x00",
        b"\x1f\x01\x00",
    ):
        with pytest.raises(der.DerError):
            der.read_one(bad)
    with pytest.raises(der.DerError, match="trailing"):
        der.read_one(b"\x05\x00\x05\x00")
