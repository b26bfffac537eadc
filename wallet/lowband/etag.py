"""Entity tags for conditional GET: how we make them and how ``If-None-Match`` matches them.

Why weak tags (``W/"…"``) for the ones we compute: the tag is a hash of the *uncompressed*
representation (content + media type), computed before the compression middleware decides
between brotli, gzip or identity. RFC 9110 §8.8.3 asks a *strong* validator to change whenever
the representation data changes, and content-coding is part of that data — so one tag shared by
the ``br``, ``gzip`` and identity bytes can only honestly be weak (nginx weakens tags it
compresses for the same reason). Weak is all we need: ``If-None-Match`` uses the weak
comparison (§13.1.2), so 304s work, and no API route here supports ranges or ``If-Match``,
where a strong tag would be required. A tag a handler sets itself is left as the handler
made it.
"""

from __future__ import annotations

import binascii
import hashlib
import re

_TAG = re.compile(rb'(?:W/)?"([^"]*)"')
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def entity_tag(content_type: bytes, body: bytes, content_encoding: bytes | None = None) -> bytes:
    """``W/"<base64url(BLAKE2b-96(media type, coding, body))>"`` — 20 bytes on the wire.

    96 bits keep accidental collisions out of reach for any one resource's history while
    keeping the header short on 2G.
    """
    material = b"\x00".join((content_type, content_encoding or b"", body))
    digest = hashlib.blake2b(material, digest_size=12).digest()
    return b'W/"' + binascii.b2a_base64(digest, newline=False).translate(_URLSAFE) + b'"'


def opaque(tag: bytes) -> bytes:
    """The quoted part of a tag, without the weakness prefix (weak comparison)."""
    tag = tag.strip()
    if tag.startswith(b"W/"):
        tag = tag[2:]
    return tag


def none_match(if_none_match: bytes, current: bytes) -> bool:
    """True when ``If-None-Match`` names ``current`` (or is ``*``): the answer is 304.

    Weak comparison per RFC 9110 §8.8.3.2: ``W/"a"`` matches ``"a"``. The list may hold
    several tags (a phone that kept more than one representation); commas inside quotes are
    legal tag characters, hence a regex over quoted strings rather than a split.
    """
    value = if_none_match.strip()
    if value == b"*":
        return True
    wanted = opaque(current)
    if wanted not in value:  # the common miss, without the regex
        return False
    return any(b'"' + match.group(1) + b'"' == wanted for match in _TAG.finditer(value))


def derived(tag: bytes, suffix: bytes) -> bytes:
    """A handler's tag adapted to another representation (``"v3"`` → ``"v3-mp"``)."""
    tag = tag.strip()
    weak = tag.startswith(b"W/")
    quoted = opaque(tag)
    inner = quoted[1:-1] if len(quoted) >= 2 and quoted[:1] == b'"' else quoted
    return (b"W/" if weak else b"") + b'"' + inner + b"-" + suffix + b'"'
