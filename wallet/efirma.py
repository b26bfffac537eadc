"""Builds the e.firma verifier from settings (trust anchors, CRL, OCSP responder)."""

from __future__ import annotations

from eidentity.efirma.ocsp import HttpOcspChecker
from eidentity.efirma.verify import EfirmaVerifier, load_crl, load_trust_anchors
from wallet.settings import Settings, SettingsError


def build_verifier(settings: Settings) -> EfirmaVerifier | None:
    """None when no trust anchors are configured: e.firma sign-in then answers 503."""
    if settings.efirma_trust_anchors is None:
        return None
    try:
        anchors = load_trust_anchors(settings.efirma_trust_anchors)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"CARPETA_EFIRMA_TRUST_ANCHORS no se pudo leer: {type(exc).__name__}"
        ) from None
    crl = None
    if settings.efirma_crl is not None:
        try:
            crl = load_crl(settings.efirma_crl)
        except (OSError, ValueError) as exc:
            raise SettingsError(
                f"CARPETA_EFIRMA_CRL no se pudo leer: {type(exc).__name__}"
            ) from None
    ocsp = HttpOcspChecker(settings.efirma_ocsp_url) if settings.efirma_ocsp_url else None
    return EfirmaVerifier(
        anchors, crl=crl, ocsp=ocsp, ocsp_fail_open=settings.efirma_ocsp_fail_open
    )
