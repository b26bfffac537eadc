"""``application/x-www-form-urlencoded`` token requests, read the way RFC 6749 asks.

A generic form parser keeps the last (or first) of repeated fields; RFC 6749 §3.2 says a
parameter MUST NOT appear more than once, and an attacker who can append to a request should
not get to pick which value we read. Parameters without a value count as absent (§3.1).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from eidentity.oauth.errors import InvalidRequest

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: A token request has at most six parameters; anything far beyond is not one.
MAX_FIELDS = 32


def parse_token_form(body: bytes) -> dict[str, str]:
    """Decode a token request body; duplicates and undecodable bytes are ``invalid_request``."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError:  # includes UnicodeDecodeError and too many fields
        raise InvalidRequest(
            "El cuerpo debe ser un formulario application/x-www-form-urlencoded en UTF-8."
        ) from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise InvalidRequest(f"El parámetro «{name[:40]}» viene más de una vez.")
        seen.add(name)
        if value:
            form[name] = value
    return form
