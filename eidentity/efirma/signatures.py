"""One place that checks a signature under whatever key type a CA or responder uses.

Certificates, CRLs and OCSP responses are all "bytes signed by a key"; we verify the
*original* signed bytes ourselves (see :mod:`eidentity.efirma.tolerant` for why) instead of
going through ``cryptography``'s higher-level helpers.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

SignatureParameters = padding.PSS | padding.PKCS1v15 | ec.ECDSA | None


def signature_valid(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    parameters: SignatureParameters = None,
) -> bool:
    """True when ``signature`` over ``data`` verifies under ``key``; never raises."""
    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None:
            pad = parameters if isinstance(parameters, padding.PSS) else padding.PKCS1v15()
            key.verify(signature, data, pad, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def issued_by(tbs: bytes, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` names ``issuer`` as its issuer and ``issuer``'s key signed ``tbs``."""
    if cert.issuer != issuer.subject:
        return False
    try:
        hash_algorithm = cert.signature_hash_algorithm
        parameters = cert.signature_algorithm_parameters
    except UnsupportedAlgorithm:
        return False
    return signature_valid(issuer.public_key(), cert.signature, tbs, hash_algorithm, parameters)
