"""C2SP signed notes (Ed25519) and tlog checkpoints — the text format of ``GET /ledger/checkpoint``.

The format is fixed by two public specifications so that standard tools (Go's
``golang.org/x/mod/sumdb/note``, transparency-dev witnesses) verify our checkpoints as they
are; every check below names the rule it enforces:

* ``c2sp.org/signed-note`` (C2SP/C2SP ``signed-note.md``), abbreviated **[note]**;
* ``c2sp.org/tlog-checkpoint`` (C2SP/C2SP ``tlog-checkpoint.md``), abbreviated **[ckpt]**;
* the reference implementation ``golang.org/x/mod/sumdb/note`` (``note.go``: ``Open``,
  ``Sign``, ``NewVerifier``), abbreviated **[go]**, where the specification leaves a choice.

A signed note is::

    <text ending in "\\n">          (for a checkpoint: origin, size, base64 root, extensions)
    <blank line>
    — <key name> <base64(4-byte key ID || signature)>\\n    (one or more lines)

with ``key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "MAX_NOTE_SIGNATURES",
    "MAX_NOTE_SIZE",
    "Checkpoint",
    "InvalidSignatureError",
    "NoteError",
    "NoteSignature",
    "NoteVerifier",
    "OpenedNote",
    "UnverifiedNoteError",
    "format_vkey",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
"""[note] "Signature types": 0x01 — Ed25519."""

MAX_NOTE_SIGNATURES = 100
"""[note] verifiers SHOULD cap the number of signatures and MUST accept at least 16; [go]
``Open`` rejects more than 100, and so do we."""

MAX_NOTE_SIZE = 1 << 20
"""Defensive cap on a note's encoded size (a checkpoint is ~150 bytes); [note] allows capping
"the overall size of a note" instead of, or besides, the signature count."""

_SIG_PREFIX = "\u2014 "  # [note] em dash (U+2014), space (U+0020)
_HASH_SIZE = 32
_MAX_TREE_SIZE = (1 << 64) - 1  # tree sizes are uint64 in every tlog implementation

# Unicode White_Space, i.e. exactly what [go]'s ``unicode.IsSpace`` accepts; [note] forbids
# "any Unicode spaces" in key names. Spelled out so the rule does not drift with str.isspace.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_TREE_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX_KEY_ID_RE = re.compile(r"[0-9A-Fa-f]{8}", re.ASCII)


class NoteError(ValueError):
    """The note, checkpoint or key is malformed or does not verify; the message says which rule."""


class InvalidSignatureError(NoteError):
    """A signature from a known key (name and key ID match) failed to verify.

    [note]: "If a signature from a known key fails to verify, clients SHOULD reject the whole
    note." Kept distinct from plain malformation so a monitor can alarm on forgery.
    """


class UnverifiedNoteError(NoteError):
    """The note is well formed but no signature is from a known key.

    [note]: "If no signature from a known key verifies successfully, clients MUST reject the
    note." ``note`` still carries the parsed, *untrusted* content for diagnostics.
    """

    def __init__(self, message: str, note: OpenedNote) -> None:
        super().__init__(message)
        self.note = note


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _is_utf8(text: str) -> bool:
    """[note] notes "MUST be valid UTF-8": a Python str may still hold lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_control_chars(text: str) -> bool:
    """[note] notes "MUST NOT contain any ASCII control characters (those below U+0020) other
    than newline"."""
    return any(c < " " and c != "\n" for c in text)


def _b64decode(data: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4, [note] "Conventions"), padding required, no stray bytes."""
    try:
        return base64.b64decode(data.encode("ascii"), validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise NoteError(f"{what} is not valid standard base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _public_key_bytes(public_key: Ed25519PublicKey | bytes) -> bytes:
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    if len(raw) != 32:
        raise NoteError("an Ed25519 public key is 32 bytes")
    return raw


def is_valid_key_name(name: str) -> bool:
    """[note] "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus
    (U+002B) characters"; [go] ``isValidName`` also requires well-formed UTF-8."""
    return (
        bool(name)
        and "+" not in name
        and not any(c in _UNICODE_SPACES for c in name)
        and _is_utf8(name)
    )


def _check_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise NoteError(
            f"invalid key name {name!r}: it must be non-empty, without spaces or '+' "
            "(c2sp.org/signed-note)"
        )


def key_id(key_name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 note key.

    [note] "Ed25519 signatures": ``key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte
    Ed25519 public key)[:4]``; it is stored big-endian as the first four signature bytes.
    """
    _check_key_name(key_name)
    raw = _public_key_bytes(public_key)
    material = key_name.encode("utf-8") + b"\n" + bytes((ALG_ED25519,)) + raw
    return hashlib.sha256(material).digest()[:4]


# ---------------------------------------------------------------------------------------------
# Verifier keys ("<name>+<hex key ID>+<base64(0x01 || public key)>", [go] NewVerifier)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted note key: name, key ID and raw 32-byte Ed25519 public key.

    The (name, key ID) pair is how [note] identifies "known" keys in signature lines.
    """

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def for_key(cls, name: str, public_key: Ed25519PublicKey | bytes) -> NoteVerifier:
        """Build a verifier from a key name and public key, computing the key ID."""
        raw = _public_key_bytes(public_key)
        return cls(name, key_id(name, raw), raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string; see :func:`parse_vkey`."""
        return parse_vkey(vkey)

    def vkey(self) -> str:
        """The verifier key string; see :func:`format_vkey`."""
        return format_vkey(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Ed25519 (RFC 8032) verification of ``signature`` over ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def format_vkey(key_name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """``<name>+<8 lowercase hex key ID>+<base64(0x01 || public key)>``.

    This is the text form [go] ``NewEd25519VerifierKey`` emits and ``NewVerifier`` reads, so
    operators can pass our key straight to Go tooling (e.g. a witness configuration).
    """
    raw = _public_key_bytes(public_key)
    kid = key_id(key_name, raw)
    return f"{key_name}+{kid.hex()}+{_b64encode(bytes((ALG_ED25519,)) + raw)}"


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse and check a verifier key string, as [go] ``NewVerifier`` does.

    The name ends at the first '+', the key ID at the second (base64 may contain '+'); the key
    ID must be 8 hex digits and equal the ID recomputed from the name and key (so a typo in any
    part is caught); the key must be 0x01 (Ed25519) followed by exactly 32 bytes.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must look like <name>+<hex key id>+<base64 key>")
    name, hex_id, b64 = parts
    _check_key_name(name)
    if not _HEX_KEY_ID_RE.fullmatch(hex_id):
        raise NoteError("verifier key ID must be exactly 8 hex digits")
    data = _b64decode(b64, "verifier key")
    if not data:
        raise NoteError("verifier key has no key data")
    if data[0] != ALG_ED25519:
        raise NoteError(f"unknown verifier key algorithm {data[0]:#04x} (only 0x01 Ed25519)")
    raw = data[1:]
    if len(raw) != 32:
        raise NoteError("an Ed25519 verifier key is 32 bytes")
    if bytes.fromhex(hex_id) != key_id(name, raw):
        raise NoteError("verifier key ID does not match the key name and public key")
    return NoteVerifier(name, bytes.fromhex(hex_id), raw)


# ---------------------------------------------------------------------------------------------
# Signed notes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The encoded signature line, newline included."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A parsed note: its text (final newline included) and its signatures.

    ``verified`` holds the signatures from known keys that verified; ``unverified`` those
    from unknown keys, which [note] says verifiers MUST ignore (they are kept, deduplicated,
    only so a caller can re-emit them, e.g. when adding a cosignature).
    """

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline (c2sp.org/signed-note)")
    if not _is_utf8(text):
        raise NoteError("note must be valid UTF-8 (c2sp.org/signed-note)")
    if _has_control_chars(text):
        raise NoteError("note must not contain control characters other than newline")


def sign_note(body: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` and return ``body + "\\n" + "— <key name> <base64(key ID || sig)>\\n"``.

    [note] "Format": the signed text is the note text *including* its final newline but not
    the separating blank line; [note] "Ed25519 signatures": RFC 8032 over that text. Ed25519 is
    deterministic, so the same body and key always give the same note (which the Go golden
    test relies on). The body is checked against the rules :func:`open_note` enforces, so
    anything we sign also verifies — here and in [go] ``Open``.
    """
    _check_key_name(key_name)
    _check_note_text(body)
    message = body.encode("utf-8")
    kid = key_id(key_name, private_key.public_key())
    sig = NoteSignature(key_name, kid, private_key.sign(message))
    note = body + "\n" + sig.line()
    if len(note.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError(f"signed note would exceed {MAX_NOTE_SIZE} bytes")
    return note


def _parse_signature_line(line: str) -> NoteSignature:
    """[note] "Format"/"Signatures": ``— <key name> base64(32-bit key ID || signature)``."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(
            "signature line must start with an em dash (U+2014) and a space (c2sp.org/signed-note)"
        )
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not b64:
        raise NoteError("signature line must be '— <key name> <base64 signature>'")
    _check_key_name(name)
    raw = _b64decode(b64, "signature")
    # [note]: "Signatures are the base64 encoding of 4+n bytes"; [go] requires n >= 1.
    if len(raw) < 5:
        raise NoteError("signature must hold a 4-byte key ID and a signature")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(text: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Parse a signed note and verify it against the trusted ``verifiers``.

    Enforced, in order:

    * size cap (``MAX_NOTE_SIZE``), valid UTF-8, no control characters but newline [note];
    * the text is separated from the signatures by the *last* blank line, so the text may
      contain empty lines and ends with a newline [note] "Format"; a note without that blank
      line, or whose signature block does not end with a newline, is malformed;
    * every line of the signature block is a well-formed signature line (any other line makes
      the note malformed, as in [go] ``Open``), at most ``MAX_NOTE_SIGNATURES`` of them;
    * signatures whose (name, key ID) pair is unknown are ignored, even if they share the name
      or the ID with a known key [note] "Signatures";
    * every signature from a known key MUST verify; one that fails rejects the whole note
      (:class:`InvalidSignatureError`) — [note] says SHOULD, and we check all of them rather
      than only the first per key as [go] does, which is strictly safer;
    * at least one signature from a known key must verify, else
      :class:`UnverifiedNoteError` [note].
    """
    if isinstance(text, bytes):
        if len(text) > MAX_NOTE_SIZE:
            raise NoteError(f"note exceeds {MAX_NOTE_SIZE} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note must be valid UTF-8 (c2sp.org/signed-note)") from exc
    elif len(text) > MAX_NOTE_SIZE:  # chars <= bytes, so this only skips hopeless inputs
        raise NoteError(f"note exceeds {MAX_NOTE_SIZE} bytes")
    _check_note_text(text)
    if len(text.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError(f"note exceeds {MAX_NOTE_SIZE} bytes")

    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError(
            "note has no blank line between its text and its signatures (c2sp.org/signed-note)"
        )
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block:
        raise NoteError("note has no signature lines (c2sp.org/signed-note)")
    lines = sig_block[:-1].split("\n")  # _check_note_text guaranteed the final newline
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise NoteError(f"note has more than {MAX_NOTE_SIGNATURES} signatures")

    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        previous = known.setdefault((v.name, v.key_id), v)
        if previous.public_key != v.public_key:
            # [go] VerifierList: an ambiguous (name, ID) means the trust list is compromised.
            raise NoteError(f"ambiguous verifiers for key {v.name}+{v.key_id.hex()}")

    message = body.encode("utf-8")
    verified: dict[NoteSignature, None] = {}
    unverified: dict[NoteSignature, None] = {}
    for line in lines:
        sig = _parse_signature_line(line)
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified[sig] = None
            continue
        if sig in verified:
            continue
        if not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(f"invalid signature for key {sig.name}+{sig.key_id.hex()}")
        verified[sig] = None

    opened = OpenedNote(body, tuple(verified), tuple(unverified))
    if not verified:
        raise UnverifiedNoteError(
            "note has no valid signature from a known key (c2sp.org/signed-note)", opened
        )
    return opened


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog checkpoint: origin, tree size, root hash and optional extension lines [ckpt].

    Construction validates, so a ``Checkpoint`` always has a body that parses back to itself.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # [ckpt] "Note text" 1: the origin MUST be non-empty (and is one line). Spaces and '+'
        # are only a SHOULD there, and clients MUST NOT assume their absence: not checked.
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line")
        # [ckpt] 2: the number of leaves, a non-negative integer (uint64 in practice).
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError("checkpoint tree size must be an integer in [0, 2**64)")
        # [ckpt] 3: the root of an RFC 6962 (SHA-256) Merkle tree.
        if len(self.root_hash) != _HASH_SIZE:
            raise NoteError("checkpoint root hash must be 32 bytes")
        # [ckpt] 4: extension lines, if any, MUST be non-empty.
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise NoteError("checkpoint extension lines must be non-empty single lines")
        # [note]: the whole note must be UTF-8 without control characters.
        for line in (self.origin, *self.extensions):
            if _has_control_chars(line) or not _is_utf8(line):
                raise NoteError("checkpoint lines must be UTF-8 without control characters")

    def body(self) -> str:
        """The note text: ``<origin>\\n<size>\\n<base64 root>\\n`` then one line per extension."""
        head = f"{self.origin}\n{self.size}\n{_b64encode(self.root_hash)}\n"
        return head + "".join(ext + "\n" for ext in self.extensions)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint note text (the part a signature covers) [ckpt] "Note text".

    At least three non-empty lines: origin; tree size in ASCII decimal without leading zeros
    ("0" for the empty tree); the base64 root hash, which must be 32 bytes and canonically
    encoded (one root, one text — no alternative encodings of the same checkpoint); then
    optional non-empty extension lines. The body must end with a newline [note].
    """
    if not body.endswith("\n"):
        raise NoteError("checkpoint text must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, tree size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    if not _TREE_SIZE_RE.fullmatch(size_line):
        raise NoteError(
            "checkpoint tree size must be ASCII decimal without leading zeros "
            "(c2sp.org/tlog-checkpoint)"
        )
    root = _b64decode(root_line, "checkpoint root hash")
    if _b64encode(root) != root_line:
        raise NoteError("checkpoint root hash is not canonical base64")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note for ``checkpoint``. [ckpt]: the key name SHOULD match the origin."""
    return sign_note(checkpoint.body(), key_name, private_key)


def verify_note(
    text: str | bytes,
    key_name: str,
    public_key: Ed25519PublicKey | bytes,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint from the log key ``key_name`` and return the checkpoint.

    Signatures by other keys (witness cosignatures, rotated keys) are ignored [ckpt]
    "Signatures". Pass ``origin`` to also require the checkpoint to be from that log: the
    signature alone does not bind the origin line, and a client must not accept another log's
    checkpoint signed by a shared key.
    """
    opened = open_note(text, (NoteVerifier.for_key(key_name, public_key),))
    checkpoint = parse_checkpoint(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
