"""Secrets on disk: generated once, 0600, never logged.

Several workers may start at the same moment on a fresh data directory. Each secret is written
to a private temporary file and hard-linked into place, so exactly one version wins and every
worker reads that one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def ensure_secret_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """Return the file's bytes, creating it atomically with mode 0600 if missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(generate())
            handle.flush()
            os.fsync(handle.fileno())
        # If another worker won the race, its secret stays and we read that one.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _new_ed25519_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ed25519(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("expected an Ed25519 private key")
    return key


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """A token-signing key with the moment it was created (newest signs)."""

    created_at: int
    private_key: Ed25519PrivateKey


class KeyStore:
    """All of the service's secrets under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def secret(self, name: str, size: int = 32) -> bytes:
        """A random symmetric secret (pseudonyms, OTP hashing, phone encryption)."""
        return ensure_secret_file(
            self.directory / f"{name}.secret", lambda: secrets.token_bytes(size)
        )

    def ed25519(self, name: str) -> Ed25519PrivateKey:
        """A single long-lived Ed25519 key (the ledger's checkpoint key)."""
        return _load_ed25519(ensure_secret_file(self.directory / f"{name}.pem", _new_ed25519_pem))

    @property
    def _jwt_dir(self) -> Path:
        return self.directory / "jwt"

    def signing_keys(self) -> list[StoredSigningKey]:
        """Token-signing keys, oldest first; creates the first one on a fresh directory."""
        keys = self._read_signing_keys()
        if not keys:
            ensure_secret_file(self._jwt_dir / "ed25519-0000000000.pem", _new_ed25519_pem)
            keys = self._read_signing_keys()
        return keys

    def rotate_signing_key(self, now: float | None = None) -> StoredSigningKey:
        """Add a new signing key; older keys stay published so live tokens still verify."""
        stamp = int(now if now is not None else time.time())
        ensure_secret_file(self._jwt_dir / f"ed25519-{stamp:010d}.pem", _new_ed25519_pem)
        return self._read_signing_keys()[-1]

    def retire_signing_keys(self, keep: int = 2) -> int:
        """Delete all but the newest ``keep`` signing keys; returns how many were removed."""
        keys = sorted(self._jwt_dir.glob("ed25519-*.pem"))
        removed = 0
        for path in keys[: max(0, len(keys) - keep)]:
            path.unlink()
            removed += 1
        return removed

    def _read_signing_keys(self) -> list[StoredSigningKey]:
        if not self._jwt_dir.is_dir():
            return []
        found = []
        for path in sorted(self._jwt_dir.glob("ed25519-*.pem")):
            stamp = int(path.stem.split("-", 1)[1])
            found.append(StoredSigningKey(stamp, _load_ed25519(path.read_bytes())))
        return found
