"""e.firma (SAT's advanced electronic signature): parse certificates, verify sign-ins."""

from eidentity.efirma.certificate import EfirmaCertificate, parse_certificate
from eidentity.efirma.ocsp import (
    HttpOcspChecker,
    NullRevocationChecker,
    OcspVerdict,
    RevocationChecker,
)
from eidentity.efirma.verify import (
    EfirmaVerifier,
    VerifiedSigner,
    load_crl,
    load_trust_anchors,
)

__all__ = [
    "EfirmaCertificate",
    "EfirmaVerifier",
    "HttpOcspChecker",
    "NullRevocationChecker",
    "OcspVerdict",
    "RevocationChecker",
    "VerifiedSigner",
    "load_crl",
    "load_trust_anchors",
    "parse_certificate",
]
