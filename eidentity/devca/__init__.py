"""Dev certificate authority: SAT-like e.firma/CSD issuance, CRL and OCSP for demos and tests."""

from eidentity.devca.ca import DevCa, IssuedCredential, init_ca
from eidentity.devca.ocsp_responder import OcspResponderServer
from eidentity.devca.satkey import encrypt_private_key, load_sat_private_key

__all__ = [
    "DevCa",
    "IssuedCredential",
    "OcspResponderServer",
    "encrypt_private_key",
    "init_ca",
    "load_sat_private_key",
]
