"""OAuth 2.0 token-endpoint errors, in both languages clients speak.

RFC 6749 §5.2 clients look for ``error`` and ``error_description``; the rest of our API speaks
RFC 9457 problem details with an es-MX ``title``. Each error here is an
:class:`~eidentity.errors.IdentityError` (so the app renders it as problem+json without knowing
it) whose ``type`` ends in the RFC 6749 code and whose extensions carry the RFC 6749 fields.
"""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar

from eidentity.errors import IdentityError

#: The challenge sent with every ``invalid_client``. RFC 6749 §5.2 wants one "matching the
#: authentication scheme used by the client"; ``private_key_jwt`` has no HTTP scheme, so the
#: challenge names the method itself rather than invite HTTP Basic, which we do not accept.
CLIENT_CHALLENGE = 'private_key_jwt realm="carpeta", error="invalid_client"'

_QUOTES = {'"': "'", "«": "'", "»": "'", "“": "'", "”": "'", "\\": "/"}


def ascii_description(text: str) -> str:
    """``text`` within RFC 6749's ``error_description`` alphabet (%x20-21 / %x23-5B / %x5D-7E).

    Accents are folded (``aserción`` → ``asercion``) so the Spanish stays readable for OAuth
    libraries that only show ``error_description``.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        char = _QUOTES.get(char, char)
        if unicodedata.combining(char):
            continue
        if char in "\t\r\n":
            char = " "
        if 0x20 <= ord(char) <= 0x7E and char not in '"\\':
            out.append(char)
    return "".join(out).strip()


class OAuthError(IdentityError):
    """Base of the RFC 6749 §5.2 errors; ``error`` is the RFC code, also the ``type`` tail."""

    error: ClassVar[str] = "invalid_request"
    slug = "oauth/invalid_request"
    title = "La solicitud de token no es válida."
    status = 400

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.extensions = {
            "error": self.error,
            "error_description": ascii_description(self.detail),
            **extensions,
        }


class InvalidRequest(OAuthError):
    error = "invalid_request"
    slug = "oauth/invalid_request"
    title = "La solicitud de token no es válida."
    status = 400


class InvalidClient(OAuthError):
    """Client authentication failed. Always 401 with a challenge, as RFC 6749 §5.2 allows."""

    error = "invalid_client"
    slug = "oauth/invalid_client"
    title = "No pudimos autenticar al cliente."
    status = 401

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers = {"WWW-Authenticate": CLIENT_CHALLENGE}


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    slug = "oauth/invalid_grant"
    title = "La concesión de autorización no es válida."
    status = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    slug = "oauth/unauthorized_client"
    title = "Este cliente no está autorizado para usar este tipo de concesión."
    status = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    slug = "oauth/unsupported_grant_type"
    title = "El tipo de concesión (grant_type) no es compatible."
    status = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    slug = "oauth/invalid_scope"
    title = "El alcance (scope) pedido no es válido o excede lo autorizado al cliente."
    status = 400


_BY_CODE: dict[str, type[OAuthError]] = {
    cls.error: cls
    for cls in (
        InvalidRequest,
        InvalidClient,
        InvalidGrant,
        UnauthorizedClient,
        UnsupportedGrantType,
        InvalidScope,
    )
}


def from_authlib(error: Any) -> OAuthError:
    """Our error for an Authlib ``OAuth2Error``: same RFC code, an es-MX detail.

    Authlib's own description (ASCII English) is kept as ``error_description`` so nothing an
    OAuth developer would have seen from a stock Authlib server is lost.
    """
    code = str(getattr(error, "error", "") or "invalid_request")
    cls = _BY_CODE.get(code, InvalidRequest)
    ours = cls()
    described = error.get_error_description() if hasattr(error, "get_error_description") else None
    if isinstance(described, str) and described:
        ours.extensions["error_description"] = ascii_description(described)
    return ours
