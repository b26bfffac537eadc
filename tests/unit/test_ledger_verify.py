"""Offline export verification (``ledger verify``) against signed checkpoints, no database."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.merkle import leaf_hash, root_from_leaf_hashes
from ledger.note import Checkpoint, NoteError, format_vkey, sign_checkpoint
from ledger.verify import load_public_key, verify_export

ORIGIN = "carpeta.test/ledger"
KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes_raw()
B64 = base64.b64encode(RAW).decode()
LEAVES = [b'{"n":%d}' % i for i in range(37)]


def note_for(size: int, key: Ed25519PrivateKey = KEY, origin: str = ORIGIN) -> str:
    root = root_from_leaf_hashes([leaf_hash(x) for x in LEAVES[:size]])
    return sign_checkpoint(Checkpoint(origin, size, root), origin, key)


def lines(leaves: list[bytes]) -> list[bytes]:
    return [
        b'{"leaf":"%s","leaf_index":%d}\n' % (base64.b64encode(x), i) for i, x in enumerate(leaves)
    ]


@pytest.mark.parametrize(
    "key",
    [
        B64,
        format_vkey(ORIGIN, RAW),
        json.dumps({"origin": ORIGIN, "key_name": ORIGIN, "public_key": B64}),
    ],
    ids=["raw", "vkey", "well-known"],
)
def test_valid_export_verifies_with_every_key_form(key: str) -> None:
    result = verify_export(lines(LEAVES), note_for(37), key)
    assert result.ok, result.message()
    assert result.leaves_read == 37 and result.extra_leaves == 0
    assert "Verificado" in result.message()


def test_prefix_checkpoint_and_empty_tree() -> None:
    older = verify_export(lines(LEAVES), note_for(20), B64)
    assert older.ok and older.extra_leaves == 17 and "17 hojas más" in older.message()
    assert verify_export([], note_for(0), B64).ok
    assert verify_export([b"\n", b"  \n"], note_for(0), B64).ok


def test_progress_reports_every_byte() -> None:
    many = [LEAVES[i % 37] for i in range(10_000)]  # several progress chunks
    data = lines(many)
    seen: list[int] = []
    root = root_from_leaf_hashes([leaf_hash(x) for x in many])
    note = sign_checkpoint(Checkpoint(ORIGIN, len(data), root), ORIGIN, KEY)
    assert verify_export(data, note, B64, progress=seen.append).ok
    assert len(seen) > 1 and sum(seen) == sum(len(x) for x in data)


def test_wrong_key_or_origin_fails_before_reading() -> None:
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    result = verify_export(lines(LEAVES), note_for(37), other)
    assert not result.ok and result.checkpoint is None
    assert "firma del checkpoint" in result.message()
    wrong_origin = verify_export(lines(LEAVES), note_for(37), B64, origin="otro.registro")
    assert not wrong_origin.ok


@pytest.mark.parametrize(
    ("mutate", "line", "index", "reason"),
    [
        (lambda ls: ls[:5] + ls[6:], 6, 6, "se esperaba la hoja 5"),
        (lambda ls: [ls[1], ls[0], *ls[2:]], 1, 1, "se esperaba la hoja 0"),
        (lambda ls: [*ls[:3], b"{not json\n", *ls[4:]], 4, None, "mal formada"),
        (lambda ls: [*ls[:3], b'{"leaf_index":3,"leaf":"***"}\n', *ls[4:]], 4, None, "mal formada"),
        (lambda ls: [*ls[:3], b'{"leaf_index":"3","leaf":""}\n', *ls[4:]], 4, None, "entero"),
        (lambda ls: ls[:30], None, 30, "tiene 30 hojas"),
    ],
    ids=["missing", "reordered", "not-json", "bad-base64", "index-type", "short"],
)
def test_first_mismatch_is_located(
    mutate: object, line: int | None, index: int | None, reason: str
) -> None:
    assert callable(mutate)
    result = verify_export(mutate(lines(LEAVES)), note_for(37), B64)
    assert not result.ok and result.mismatch is not None
    assert reason in result.mismatch.reason
    assert result.mismatch.line == line and result.mismatch.leaf_index == index
    assert result.message().startswith("NO verificado")


def test_altered_leaf_changes_the_root() -> None:
    forged = list(LEAVES)
    forged[11] = b'{"n":1100}'
    result = verify_export(lines(forged), note_for(37), B64)
    assert not result.ok and result.mismatch is not None
    assert "alterada" in result.mismatch.reason and result.computed_root is not None


def test_public_key_forms_are_checked() -> None:
    assert load_public_key(f"  {B64}\n").raw == RAW
    assert load_public_key(format_vkey(ORIGIN, RAW)).key_name == ORIGIN
    for bad in ("no-es-base64!", base64.b64encode(b"short").decode(), '{"public_key": 1}'):
        with pytest.raises(NoteError):
            load_public_key(bad)
