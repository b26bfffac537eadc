"""C2SP signed notes and tlog checkpoints.

Golden vectors come from golang.org/x/mod/sumdb/note (package documentation in ``note.go`` and
``note_test.go``): the PeterNeumann verifier key, signer key, note, and the EnochRoot
cosignature. Our signer must reproduce Go's note byte for byte (Ed25519 is deterministic) and
our verifier must accept it, which is what "standard tools verify our checkpoints" rests on.
"""

from __future__ import annotations

import base64
import hashlib
import string

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.note import (
    Checkpoint,
    InvalidSignatureError,
    NoteError,
    NoteVerifier,
    UnverifiedNoteError,
    format_vkey,
    is_valid_key_name,
    key_id,
    open_note,
    parse_checkpoint,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_note,
)

# --- golang.org/x/mod/sumdb/note ------------------------------------------------------------
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox3"
    "3WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_PETER_SIG

ORIGIN = "carpeta.gob.mx/ledger"
# Characters allowed on a checkpoint line: no control characters, no newline, no lone
# surrogates (not UTF-8).
LINE_CHARS = st.characters(min_codepoint=0x20, exclude_characters="\n", exclude_categories=["Cs"])
ROOT = hashlib.sha256(b"some root").digest()


def go_private_key() -> Ed25519PrivateKey:
    """Decode Go's ``PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)`` signer key."""
    b64 = GO_SKEY.split("+", 4)[4]
    raw = base64.b64decode(b64)
    assert raw[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


@pytest.fixture(scope="module")
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signed(log_key: Ed25519PrivateKey) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT), ORIGIN, log_key)


# --------------------------------------------------------------------------------------------
# Golden vectors
# --------------------------------------------------------------------------------------------


def test_go_verifier_key_parses_and_formats_back_identically() -> None:
    v = parse_vkey(GO_VKEY)
    assert v.name == "PeterNeumann"
    assert v.key_id == bytes.fromhex("c74f20a3")
    assert v.vkey() == GO_VKEY
    assert format_vkey("PeterNeumann", v.public_key) == GO_VKEY
    assert go_private_key().public_key().public_bytes_raw() == v.public_key


def test_go_note_verifies() -> None:
    opened = open_note(GO_NOTE, [parse_vkey(GO_VKEY)])
    assert opened.text == GO_TEXT
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert opened.unverified == ()
    assert open_note(GO_NOTE.encode("utf-8"), [parse_vkey(GO_VKEY)]).text == GO_TEXT


def test_our_signer_reproduces_the_go_note_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", go_private_key()) == GO_NOTE


def test_go_cosigned_note_verifies_with_either_or_both_keys() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    peter, enoch = parse_vkey(GO_VKEY), parse_vkey(GO_ENOCH_VKEY)
    only_peter = open_note(note, [peter])
    assert [s.name for s in only_peter.verified] == ["PeterNeumann"]
    assert [s.name for s in only_peter.unverified] == ["EnochRoot"]
    both = open_note(note, [peter, enoch])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(UnverifiedNoteError) as info:
        open_note(note, [])
    assert len(info.value.note.unverified) == 2


@pytest.mark.parametrize(
    "bad",
    [
        GO_TEXT,  # no signatures at all
        GO_TEXT + "\n",  # blank line but no signature lines
        GO_TEXT + "\n" + GO_PETER_SIG[:-1],  # signature block not ending in newline
        "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,  # control character
        GO_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
        "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",  # space in the key name
        GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",  # non-signature line
        GO_TEXT + "\n" + GO_PETER_SIG.replace("—", "-"),  # hyphen instead of em dash
        GO_TEXT + "\n" + GO_PETER_SIG.replace("—", "--"),
        GO_TEXT + "\n" + GO_PETER_SIG.replace("— ", "—"),  # em dash without the space
        GO_TEXT + "\n" + GO_PETER_SIG.replace("=\n", "\n"),  # bad base64 padding
        GO_TEXT + "\n" + GO_PETER_SIG.replace("x08g", "x08!"),  # not base64
        GO_TEXT + "\n" + "— PeterNeumann AAAA\n",  # shorter than key ID + 1 byte
        GO_TEXT + "\n" + "— PeterNeumann \n",  # empty signature
        GO_TEXT.replace("\n", "\r\n") + "\r\n" + GO_PETER_SIG,  # CRLF
        GO_TEXT + "\n" + GO_PETER_SIG * 101,  # more than 100 signatures
        GO_TEXT + "\n" + GO_PETER_SIG + "\ud800\n",  # not encodable as UTF-8
    ],
)
def test_malformed_notes_are_rejected_as_malformed(bad: str) -> None:
    with pytest.raises(NoteError) as info:
        open_note(bad, [parse_vkey(GO_VKEY)])
    assert type(info.value) is NoteError, info.value


def test_invalid_utf8_bytes_are_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + GO_NOTE.encode("utf-8"), [parse_vkey(GO_VKEY)])


def test_corrupted_go_signature_is_an_invalid_signature() -> None:
    corrupted = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError, match=r"PeterNeumann\+c74f20a3"):
        open_note(corrupted, [parse_vkey(GO_VKEY)])
    with pytest.raises(InvalidSignatureError):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [parse_vkey(GO_VKEY)])


def test_every_mangling_of_the_go_verifier_key_is_rejected() -> None:
    # As Go's TestNewVerifier: every proper substring and every single-character bump fails.
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(NoteError):
                    parse_vkey(GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):
        bumped = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            parse_vkey(bumped)
    with pytest.raises(NoteError):  # wrong length key, with adjusted key hash (Go's case)
        parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError):  # unknown algorithm, with adjusted key hash (Go's case)
        parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(NoteError):  # Python's int(x, 16) would take "0x"; the format does not
        parse_vkey(GO_VKEY.replace("c74f20a3", "0xc74f20"))


# --------------------------------------------------------------------------------------------
# Key IDs and names
# --------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(
    st.text(string.ascii_letters + string.digits + "./-_:é", min_size=1, max_size=40),
    st.binary(min_size=32, max_size=32),
)
def test_key_id_follows_the_c2sp_rule(name: str, public_key: bytes) -> None:
    # SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4], spelled out here.
    h = hashlib.sha256()
    h.update(name.encode("utf-8"))
    h.update(bytes([0x0A]))
    h.update(bytes([0x01]))
    h.update(public_key)
    assert key_id(name, public_key) == h.digest()[:4]
    vkey = format_vkey(name, public_key)
    encoded_key = base64.b64encode(bytes([0x01]) + public_key).decode()
    assert vkey == f"{name}+{h.digest()[:4].hex()}+{encoded_key}"
    assert parse_vkey(vkey) == NoteVerifier(name, h.digest()[:4], public_key)


@pytest.mark.parametrize(
    "name",
    ["", "a b", "a+b", "+", "tab\there", "nl\nhere", "nbsp\u00a0", "ideo\u3000", "em\u2003sp"],
)
def test_invalid_key_names_are_refused_everywhere(name: str, log_key: Ed25519PrivateKey) -> None:
    assert not is_valid_key_name(name)
    with pytest.raises(NoteError, match="key name"):
        sign_note("hello\n", name, log_key)
    with pytest.raises(NoteError):
        key_id(name, log_key.public_key())


def test_valid_key_names() -> None:
    for name in (ORIGIN, "PeterNeumann", "ejemplo.mx/bitácora", "a"):
        assert is_valid_key_name(name)


# --------------------------------------------------------------------------------------------
# Our checkpoints
# --------------------------------------------------------------------------------------------


def test_checkpoint_body_and_note_format(signed: str, log_key: Ed25519PrivateKey) -> None:
    body = f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint(ORIGIN, 1234, ROOT).body() == body
    assert signed.startswith(body + "\n— " + ORIGIN + " ")
    assert signed.endswith("\n")
    sig = base64.b64decode(signed.rstrip("\n").rsplit(" ", 1)[1], validate=True)
    assert sig[:4] == key_id(ORIGIN, log_key.public_key())
    log_key.public_key().verify(sig[4:], body.encode())  # raises if the signature is wrong


def test_sign_and_verify_round_trip(signed: str, log_key: Ed25519PrivateKey) -> None:
    checkpoint = verify_note(signed, ORIGIN, log_key.public_key(), origin=ORIGIN)
    assert checkpoint == Checkpoint(ORIGIN, 1234, ROOT)
    raw = log_key.public_key().public_bytes_raw()
    assert verify_note(signed, ORIGIN, raw) == checkpoint


@settings(max_examples=200, deadline=None)
@given(
    origin=st.text(LINE_CHARS, min_size=1),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(LINE_CHARS, min_size=1),
        max_size=3,
    ),
)
def test_any_checkpoint_round_trips(
    origin: str, size: int, root: bytes, extensions: list[str], log_key: Ed25519PrivateKey
) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(cp.body()) == cp
    note = sign_checkpoint(cp, "carpeta.example/log", log_key)
    assert verify_note(note, "carpeta.example/log", log_key.public_key()) == cp


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n1234\n", "\n1235\n"),  # tree size
        (ORIGIN + "\n", "carpeta.gob.mx/other\n"),  # origin
        (base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[::-1]).decode()),  # root hash
    ],
)
def test_tampered_checkpoints_fail(
    signed: str, log_key: Ed25519PrivateKey, old: str, new: str
) -> None:
    assert old in signed
    with pytest.raises(InvalidSignatureError):
        verify_note(signed.replace(old, new, 1), ORIGIN, log_key.public_key())


def test_wrong_key_or_key_name_finds_no_known_signature(
    signed: str, log_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(UnverifiedNoteError):
        verify_note(signed, ORIGIN, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(UnverifiedNoteError):
        verify_note(signed, "carpeta.gob.mx/otro", log_key.public_key())


def test_origin_must_match_when_asked(signed: str, log_key: Ed25519PrivateKey) -> None:
    with pytest.raises(NoteError, match="origin"):
        verify_note(signed, ORIGIN, log_key.public_key(), origin="carpeta.gob.mx/otro")


def test_missing_blank_line_or_em_dash_is_malformed(
    signed: str, log_key: Ed25519PrivateKey
) -> None:
    for bad in (signed.replace("\n\n", "\n"), signed.replace("— ", "- ")):
        with pytest.raises(NoteError) as info:
            verify_note(bad, ORIGIN, log_key.public_key())
        assert type(info.value) is NoteError


def test_signatures_from_unknown_keys_are_ignored(signed: str, log_key: Ed25519PrivateKey) -> None:
    body = signed.split("\n\n")[0] + "\n"
    ours = signed[len(body) + 1 :]
    witness = Ed25519PrivateKey.generate()
    lines = [
        sign_note(body, "witness.example/w1", witness)[len(body) + 1 :],
        # Same name as ours, other key (so other key ID): unknown, ignored.
        sign_note(body, ORIGIN, witness)[len(body) + 1 :],
        # Garbage signature with an unknown name but our key ID: unknown, ignored.
        "— witness.example/w2 "
        + base64.b64encode(key_id(ORIGIN, log_key.public_key()) + b"\x00" * 64).decode()
        + "\n",
        # Post-quantum-sized signature from an unknown algorithm/key.
        "— pq.example/w3 " + base64.b64encode(b"\x01\x02\x03\x04" + b"\x07" * 2420).decode() + "\n",
    ]
    for order in ([*lines, ours], [ours, *lines], [*lines[:2], ours, *lines[2:]]):
        note = body + "\n" + "".join(order)
        assert verify_note(note, ORIGIN, log_key.public_key()) == Checkpoint(ORIGIN, 1234, ROOT)
        opened = open_note(note, [NoteVerifier.for_key(ORIGIN, log_key.public_key())])
        assert len(opened.verified) == 1
        assert len(opened.unverified) == len(lines)
    # C2SP requires accepting at least 16 signatures.
    many = body + "\n" + lines[0] * 15 + ours
    assert verify_note(many, ORIGIN, log_key.public_key()).size == 1234
    # Unknown signatures alone are not enough.
    with pytest.raises(UnverifiedNoteError):
        verify_note(body + "\n" + "".join(lines), ORIGIN, log_key.public_key())


def test_a_bad_signature_from_the_known_key_rejects_the_note_even_next_to_a_good_one(
    signed: str, log_key: Ed25519PrivateKey
) -> None:
    body = signed.split("\n\n")[0] + "\n"
    kid = key_id(ORIGIN, log_key.public_key())
    forged = f"— {ORIGIN} {base64.b64encode(kid + bytes(64)).decode()}\n"
    for note in (signed + forged, body + "\n" + forged + signed[len(body) + 1 :]):
        with pytest.raises(InvalidSignatureError):
            verify_note(note, ORIGIN, log_key.public_key())


def test_sign_note_refuses_bodies_that_would_not_verify(log_key: Ed25519PrivateKey) -> None:
    with pytest.raises(NoteError, match="newline"):
        sign_note("no final newline", ORIGIN, log_key)
    with pytest.raises(NoteError, match="newline"):
        sign_note("", ORIGIN, log_key)
    with pytest.raises(NoteError, match="control"):
        sign_note("bell\x07\n", ORIGIN, log_key)


def test_ambiguous_verifiers_are_refused() -> None:
    peter = parse_vkey(GO_VKEY)
    impostor = NoteVerifier(peter.name, peter.key_id, bytes(32))
    with pytest.raises(NoteError, match="ambiguous"):
        open_note(GO_NOTE, [peter, impostor])
    assert open_note(GO_NOTE, [peter, peter]).text == GO_TEXT


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}",  # no final newline
        f"{ORIGIN}\n1234\n",  # missing root line
        f"\n1234\n{base64.b64encode(ROOT).decode()}\n",  # empty origin
        f"{ORIGIN}\n01234\n{base64.b64encode(ROOT).decode()}\n",  # leading zero
        f"{ORIGIN}\n00\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n+1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n 1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n1_000\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n\u0661\u0662\n{base64.b64encode(ROOT).decode()}\n",  # Arabic-Indic digits
        f"{ORIGIN}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",  # beyond uint64
        f"{ORIGIN}\n\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",  # no padding
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()[:-2]}B=\n",  # non-canonical bits
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n\n",  # empty extension line
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\next\x01\n",  # control character
    ],
)
def test_malformed_checkpoint_bodies_are_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body)


def test_checkpoint_constructor_accepts_the_largest_size() -> None:
    assert parse_checkpoint(Checkpoint(ORIGIN, 2**64 - 1, ROOT).body()).size == 2**64 - 1


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**64, ROOT, ()),
        (ORIGIN, 1, ROOT[:16], ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("two\nlines",)),
        ("\ud800", 1, ROOT, ()),  # lone surrogate: not UTF-8
        ("tab\there", 1, ROOT, ()),
    ],
)
def test_checkpoint_constructor_validates(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        Checkpoint(origin, size, root, extensions)


def test_note_text_may_contain_empty_lines(log_key: Ed25519PrivateKey) -> None:
    # c2sp.org/signed-note: "The note text MAY contain empty lines; the text is separated from
    # the signatures by the last empty line in the note." (text from the spec's own example)
    text = (
        "Ognuno sta solo sul cuor della terra\n"
        "trafitto da un raggio di sole:\n"
        "\n"
        "ed è subito sera.\n"
    )
    note = sign_note(text, "quasimodo.example/salvatore", log_key)
    verifier = NoteVerifier.for_key("quasimodo.example/salvatore", log_key.public_key())
    assert open_note(note, [verifier]).text == text
