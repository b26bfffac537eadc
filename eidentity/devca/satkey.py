"""Write private keys exactly as SAT's ``.key`` files are written.

SAT ships encrypted PKCS#8 DER: PBES2 with PBKDF2-HMAC-SHA1 (8-byte salt, 2048 iterations,
no explicit key length or PRF) and des-ede3-cbc. ``cryptography`` can read that but its
serializers only write AES-based PBES2, so the wrapper is assembled here by hand. Matching the
format matters because citizens' devices, and our own PWA code, must open dev keys and real
SAT keys with the same code path.
"""

from __future__ import annotations

import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.hazmat.primitives.serialization import load_der_private_key

from eidentity.efirma import der

OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_DES_EDE3_CBC = "1.2.840.113549.3.7"
SAT_ITERATIONS = 2048


def encrypt_private_key(
    key: rsa.RSAPrivateKey,
    password: str | bytes,
    *,
    iterations: int = SAT_ITERATIONS,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> bytes:
    """EncryptedPrivateKeyInfo (RFC 5958) in SAT's PBES2/PBKDF2-SHA1/3DES-CBC flavour."""
    secret = password.encode("utf-8") if isinstance(password, str) else password
    if not secret:
        raise ValueError("a SAT key needs a password")
    salt = salt if salt is not None else os.urandom(8)
    iv = iv if iv is not None else os.urandom(8)
    if len(iv) != 8:
        raise ValueError("des-ede3-cbc needs an 8-byte IV")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=24, salt=salt, iterations=iterations)  # noqa: S303 - SAT's format
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    padder = PKCS7(64).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(TripleDES(kdf.derive(secret)), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    algorithm = der.sequence(
        der.object_identifier(OID_PBES2),
        der.sequence(
            der.sequence(
                der.object_identifier(OID_PBKDF2),
                der.sequence(der.octet_string(salt), der.integer(iterations)),
            ),
            der.sequence(der.object_identifier(OID_DES_EDE3_CBC), der.octet_string(iv)),
        ),
    )
    return der.sequence(algorithm, der.octet_string(encrypted))


def load_sat_private_key(data: bytes, password: str | bytes) -> rsa.RSAPrivateKey:
    """Open a SAT (or dev CA) ``.key``; a wrong password raises ``ValueError``."""
    secret = password.encode("utf-8") if isinstance(password, str) else password
    key = load_der_private_key(data, password=secret)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a SAT key is RSA")
    return key


def describe_encryption(data: bytes) -> dict[str, object]:
    """The algorithm OIDs and parameters inside an encrypted ``.key`` (for tests and docs)."""
    algorithm, _ = der.read_one(data).children()
    scheme_oid, params = algorithm.children()
    kdf, cipher = params.children()
    kdf_oid, kdf_params = kdf.children()
    kdf_fields = kdf_params.children()
    cipher_oid, iv = cipher.children()
    return {
        "scheme": der.decode_oid(scheme_oid),
        "kdf": der.decode_oid(kdf_oid),
        "salt_length": len(kdf_fields[0].content),
        "iterations": int.from_bytes(kdf_fields[1].content, "big"),
        "kdf_extra_fields": len(kdf_fields) - 2,
        "cipher": der.decode_oid(cipher_oid),
        "iv_length": len(iv.content),
    }
