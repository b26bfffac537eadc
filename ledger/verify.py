"""Offline verification of a ledger export against a signed checkpoint and the log's public key.

What it proves: the export's first ``size`` leaves, hashed as RFC 9162 leaves in index order,
give exactly the root the log operator signed for ``size``. So no leaf of that tree was
changed, dropped, reordered or inserted — by the operator, the database or the transport.
It needs nothing from the server; :func:`verify_export` is the same algorithm an outsider can
write in ~50 lines (see docs/ledger.md).

Export format (JSON Lines): one object per line with ``leaf_index`` (0, 1, 2, … contiguous)
and ``leaf`` (standard base64 of the exact leaf bytes). Blank lines are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ledger.merkle import CompactRange
from ledger.note import (
    Checkpoint,
    NoteError,
    is_valid_key_name,
    parse_vkey,
    verify_note,
)

__all__ = [
    "Mismatch",
    "PublicKey",
    "VerifyResult",
    "load_public_key",
    "verify_checkpoint",
    "verify_export",
    "verify_export_file",
]

Progress = Callable[[int], None]
"""Called with the number of input bytes consumed since the previous call."""

_CHUNK = 4096  # leaf hashes folded into the frontier per call (bounded memory)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The log's verification key: raw Ed25519 key, and its note key name when known."""

    raw: bytes
    key_name: str | None = None
    origin: str | None = None


def load_public_key(text: str) -> PublicKey:
    """Parse a key given as a vkey (``name+id+base64``), raw base64 (32 bytes), or the JSON
    of ``/.well-known/carpeta-ledger`` (``{origin, key_name, public_key}``)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
            raw = base64.b64decode(obj["public_key"], validate=True)
            name, origin = obj.get("key_name"), obj.get("origin")
        except (ValueError, KeyError, TypeError) as exc:
            raise NoteError("la llave pública JSON no tiene el formato esperado") from exc
        if len(raw) != 32:
            raise NoteError("la llave pública Ed25519 debe medir 32 bytes")
        return PublicKey(raw, name if isinstance(name, str) else None, origin)
    if text.count("+") >= 2 and is_valid_key_name(text.split("+", 1)[0]):
        try:
            verifier = parse_vkey(text)
        except NoteError:
            pass  # raw base64 may contain '+' too; try that below
        else:
            return PublicKey(verifier.public_key, verifier.name)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("la llave pública no es base64 ni una vkey válida") from exc
    if len(raw) != 32:
        raise NoteError("la llave pública Ed25519 debe medir 32 bytes (base64 de 44 caracteres)")
    return PublicKey(raw)


def verify_checkpoint(
    note: str | bytes, key: PublicKey, *, origin: str | None = None
) -> Checkpoint:
    """Verify the signed note under ``key`` and return the checkpoint it signs.

    Without a key name (raw key), the names on the note's signature lines are tried: a key
    name only selects the key ID, the Ed25519 signature is what binds the text.
    """
    origin = origin or key.origin
    if key.key_name is not None:
        return verify_note(note, key.key_name, key.raw, origin=origin)
    text = note.decode("utf-8", "replace") if isinstance(note, bytes) else note
    names = [
        line[2:].split(" ", 1)[0]
        for line in text.rsplit("\n\n", 1)[-1].splitlines()
        if line.startswith("\u2014 ")
    ]
    last: NoteError = NoteError("el checkpoint no tiene firmas")
    for name in dict.fromkeys(names):
        if not is_valid_key_name(name):
            continue
        try:
            return verify_note(note, name, key.raw, origin=origin)
        except NoteError as exc:
            last = exc
    raise last


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first problem found: where (line, leaf index) and what, in es-MX."""

    reason: str
    line: int | None = None
    leaf_index: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify_export`. ``ok`` only if the signed tree is fully reproduced."""

    ok: bool
    checkpoint: Checkpoint | None
    leaves_read: int
    computed_root: bytes | None
    mismatch: Mismatch | None = None
    extra_leaves: int = 0

    def message(self) -> str:
        """One es-MX paragraph for people (CLI output)."""
        if self.ok and self.checkpoint is not None:
            text = (
                f"Verificado: las {self.checkpoint.size} hojas de la exportación reproducen la "
                f"raíz firmada {base64.b64encode(self.checkpoint.root_hash).decode()} "
                f"del registro {self.checkpoint.origin}."
            )
            if self.extra_leaves:
                text += (
                    f" La exportación trae {self.extra_leaves} hojas más, posteriores a este "
                    "checkpoint; no quedan cubiertas por esta verificación."
                )
            return text
        assert self.mismatch is not None
        where = []
        if self.line is not None:
            where.append(f"línea {self.line}")
        if self.mismatch.leaf_index is not None:
            where.append(f"hoja {self.mismatch.leaf_index}")
        prefix = f"NO verificado ({', '.join(where)}): " if where else "NO verificado: "
        return prefix + self.mismatch.reason

    @property
    def line(self) -> int | None:
        return None if self.mismatch is None else self.mismatch.line


def _fail(
    checkpoint: Checkpoint | None,
    read: int,
    reason: str,
    *,
    line: int | None = None,
    leaf_index: int | None = None,
    root: bytes | None = None,
) -> VerifyResult:
    return VerifyResult(False, checkpoint, read, root, Mismatch(reason, line, leaf_index))


def _parse_line(raw: bytes | str) -> tuple[int, bytes]:
    obj: Any = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("la línea no es un objeto JSON")
    index, leaf = obj.get("leaf_index"), obj.get("leaf")
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(leaf, str):
        raise ValueError("faltan leaf_index (entero) o leaf (base64)")
    return index, base64.b64decode(leaf, validate=True)


def verify_export(
    lines: Iterable[bytes | str],
    checkpoint_note: str | bytes,
    public_key: PublicKey | str,
    *,
    origin: str | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Recompute the tree from exported leaves and compare it with the signed checkpoint.

    Checks, in order, stopping at the first failure: the checkpoint's signature (and origin,
    if given); every line parses; indices are contiguous from 0; at least ``size`` leaves;
    the root of the first ``size`` leaves equals the signed root. Leaves beyond ``size``
    are still parsed and index-checked, and counted in ``extra_leaves``.
    """
    key = load_public_key(public_key) if isinstance(public_key, str) else public_key
    try:
        checkpoint = verify_checkpoint(checkpoint_note, key, origin=origin)
    except NoteError as exc:
        return _fail(None, 0, f"la firma del checkpoint no es válida con esta llave ({exc})")

    size = checkpoint.size
    compact = CompactRange()
    pending: list[bytes] = []
    sha = hashlib.sha256
    root_at_size = compact.root() if size == 0 else None
    expected = 0
    pending_bytes = 0
    for number, raw in enumerate(lines, start=1):
        pending_bytes += len(raw)
        if not raw.strip():
            continue
        try:
            index, leaf = _parse_line(raw)
        except (ValueError, binascii.Error) as exc:
            return _fail(checkpoint, expected, f"línea mal formada: {exc}", line=number)
        if index != expected:
            return _fail(
                checkpoint,
                expected,
                f"se esperaba la hoja {expected} y llegó la {index}: faltan, sobran o están "
                "desordenadas",
                line=number,
                leaf_index=index,
            )
        expected += 1
        if expected <= size:
            pending.append(sha(b"\x00" + leaf).digest())
            if len(pending) >= _CHUNK or expected == size:
                compact.append_many(pending)
                pending.clear()
                if expected == size:
                    root_at_size = compact.root()
        if progress is not None and expected % _CHUNK == 0:
            progress(pending_bytes)
            pending_bytes = 0
    if progress is not None and pending_bytes:
        progress(pending_bytes)
    if expected < size:
        return _fail(
            checkpoint,
            expected,
            f"la exportación tiene {expected} hojas y el checkpoint firma {size}",
            leaf_index=expected,
        )
    assert root_at_size is not None
    if root_at_size != checkpoint.root_hash:
        return _fail(
            checkpoint,
            expected,
            "la raíz calculada con las hojas no es la raíz firmada: alguna hoja fue alterada "
            f"(calculada {base64.b64encode(root_at_size).decode()})",
            root=root_at_size,
        )
    return VerifyResult(True, checkpoint, expected, root_at_size, None, expected - size)


def verify_export_file(
    export: Path | IO[bytes],
    checkpoint_note: str | bytes,
    public_key: PublicKey | str,
    *,
    origin: str | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """:func:`verify_export` over a file path or binary stream, read line by line."""
    if isinstance(export, Path):
        with export.open("rb") as stream:
            return verify_export(
                stream, checkpoint_note, public_key, origin=origin, progress=progress
            )
    return verify_export(export, checkpoint_note, public_key, origin=origin, progress=progress)
