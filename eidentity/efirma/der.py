"""A deliberately small DER reader and writer.

``cryptography`` hides the raw encoding we sometimes need: the exact ``tbsCertificate`` and
issuer-name bytes of a certificate whose names it refuses to parse (SAT's mis-tagged
PrintableStrings), and the PBES2 structure SAT uses for ``.key`` files, which its serializers
cannot write. Only what those two jobs need is here: single-byte tags, definite lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13

_CONSTRUCTED = 0x20


class DerError(ValueError):
    """The bytes are not the DER we expected."""


@dataclass(frozen=True)
class Tlv:
    """One decoded element: its tag, its content octets and its full encoding."""

    tag: int
    content: bytes
    raw: bytes

    @property
    def constructed(self) -> bool:
        return bool(self.tag & _CONSTRUCTED)

    def children(self) -> list[Tlv]:
        """The elements inside a constructed value (SEQUENCE, SET, [n] EXPLICIT)."""
        if not self.constructed:
            raise DerError(f"tag 0x{self.tag:02x} is primitive")
        items: list[Tlv] = []
        offset = 0
        while offset < len(self.content):
            item, offset = read_tlv(self.content, offset)
            items.append(item)
        return items


def read_tlv(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Decode the element starting at ``offset``; return it and the offset after it."""
    if offset + 2 > len(data):
        raise DerError("truncated header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length")
        if pos + count > len(data):
            raise DerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("non-minimal length")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated content")
    return Tlv(tag, bytes(data[pos:end]), bytes(data[offset:end])), end


def read_one(data: bytes) -> Tlv:
    """Decode ``data`` as exactly one element, with nothing after it."""
    item, end = read_tlv(data)
    if end != len(data):
        raise DerError("trailing bytes")
    return item


def encode(tag: int, content: bytes) -> bytes:
    """Encode one element with a minimal definite length."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def sequence(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def octet_string(value: bytes) -> bytes:
    return encode(OCTET_STRING, value)


def integer(value: int) -> bytes:
    """A non-negative INTEGER (all we ever write)."""
    if value < 0:
        raise ValueError("negative INTEGER not supported")
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def bit_string(value: bytes) -> bytes:
    """A BIT STRING of whole octets (signatures, keys)."""
    return encode(BIT_STRING, b"\x00" + value)


def object_identifier(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"bad OID {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(OBJECT_IDENTIFIER, bytes(body))


def decode_oid(item: Tlv) -> str:
    if item.tag != OBJECT_IDENTIFIER or not item.content:
        raise DerError("not an OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in item.content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if item.content[-1] & 0x80:
        raise DerError("truncated OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])
