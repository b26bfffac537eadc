"""A witness for a Carpeta ledger: remembers the last checkpoint and checks every new one.

Each check fetches ``<URL>/.well-known/carpeta-ledger`` and ``<URL>/ledger/checkpoint``,
verifies the checkpoint's signature with the key pinned on the first run, and compares it
with the stored checkpoint:

* same size, same root — nothing new;
* same size, different root — **fork**: two signed, incompatible histories;
* smaller size — **rollback**: entries were removed;
* larger size — fetch ``/ledger/proofs/consistency?first=&second=`` and verify it (RFC 9162
  §2.1.4.2); a proof that does not verify is a fork too (history was rewritten).

Only verified progress is saved (atomically: temp file, fsync, rename, fsync directory), so
after an alarm the state still holds the last good checkpoint, and the conflicting signed
note is returned as evidence. The state file is small JSON a person can read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from ledger.merkle import verify_consistency
from ledger.note import Checkpoint, NoteError, verify_note

__all__ = [
    "ALARMS",
    "Monitor",
    "MonitorResult",
    "MonitorStatus",
    "WitnessState",
    "load_state",
    "save_state",
]


class MonitorStatus(StrEnum):
    FIRST_RUN = "first_run"
    UNCHANGED = "unchanged"
    ADVANCED = "advanced"
    FORK = "fork"
    ROLLBACK = "rollback"
    INCONSISTENT = "inconsistent"
    KEY_CHANGED = "key_changed"
    BAD_SIGNATURE = "bad_signature"
    UNAVAILABLE = "unavailable"


ALARMS = frozenset(
    {
        MonitorStatus.FORK,
        MonitorStatus.ROLLBACK,
        MonitorStatus.INCONSISTENT,
        MonitorStatus.KEY_CHANGED,
        MonitorStatus.BAD_SIGNATURE,
    }
)
"""Statuses that mean the log misbehaved (exit 2), as opposed to being unreachable (exit 1)."""


@dataclass(frozen=True, slots=True)
class WitnessState:
    """What the witness remembers: the pinned key and the last verified checkpoint."""

    url: str
    origin: str
    key_name: str
    public_key: str  # base64 raw Ed25519 key, pinned on the first run
    size: int
    root: str  # base64
    note: str  # the signed checkpoint, kept as evidence
    updated_at: str


def load_state(path: Path) -> WitnessState | None:
    """The saved state, or ``None`` on the first run (no file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return WitnessState(**data)


def save_state(path: Path, state: WitnessState) -> None:
    """Replace the state file atomically: a crash leaves the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(state), out, ensure_ascii=False, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One check: status, an es-MX message, and the checkpoints involved."""

    status: MonitorStatus
    message: str
    checkpoint: Checkpoint | None = None
    previous: Checkpoint | None = None
    evidence: str | None = None  # the offending signed note, when there is one

    @property
    def alarm(self) -> bool:
        return self.status in ALARMS

    @property
    def exit_code(self) -> int:
        """0 all good, 1 could not check, 2 the log misbehaved."""
        if self.alarm:
            return 2
        return 1 if self.status is MonitorStatus.UNAVAILABLE else 0


class _Unavailable(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Monitor:
    """Checks one log; pass an ``httpx.Client`` to control transport, TLS or timeouts."""

    def __init__(
        self,
        url: str,
        state_path: Path,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.state_path = state_path
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._owns_client = client is None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, int] | None = None) -> httpx.Response:
        try:
            response = self._client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise _Unavailable(f"no se pudo consultar {self.url}{path}: {exc}") from exc
        if response.status_code != 200:
            raise _Unavailable(f"{self.url}{path} respondió HTTP {response.status_code}")
        return response

    def check_once(self) -> MonitorResult:
        """Fetch, verify, compare and (only if all is well) save. Never raises on the log's
        behaviour: every outcome is a :class:`MonitorResult`."""
        try:
            return self._check()
        except _Unavailable as exc:
            return MonitorResult(MonitorStatus.UNAVAILABLE, str(exc))

    def _check(self) -> MonitorResult:
        saved = load_state(self.state_path)
        try:
            info = self._get("/.well-known/carpeta-ledger").json()
            origin, key_name = str(info["origin"]), str(info["key_name"])
            public_key = base64.b64decode(info["public_key"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _Unavailable(f"/.well-known/carpeta-ledger no es válido: {exc}") from exc

        if saved is not None:
            pinned = (saved.origin, saved.key_name, saved.public_key)
            if pinned != (origin, key_name, _b64(public_key)):
                return MonitorResult(
                    MonitorStatus.KEY_CHANGED,
                    "ALERTA: el registro anuncia otra llave u origen que la fijada en la primera "
                    f"consulta (fijada: {saved.key_name} {saved.public_key}; anunciada: "
                    f"{key_name} {_b64(public_key)}). Si la rotación es legítima, el operador "
                    "debe anunciarla; borra el estado solo tras confirmarlo.",
                    evidence=json.dumps(info, ensure_ascii=False),
                )
            public_key = base64.b64decode(saved.public_key)

        note = self._get("/ledger/checkpoint").text
        try:
            checkpoint = verify_note(note, key_name, public_key, origin=origin)
        except NoteError as exc:
            return MonitorResult(
                MonitorStatus.BAD_SIGNATURE,
                f"ALERTA: el checkpoint publicado no verifica con la llave del registro ({exc}).",
                evidence=note,
            )

        def new_state() -> WitnessState:
            return WitnessState(
                url=self.url,
                origin=origin,
                key_name=key_name,
                public_key=_b64(public_key),
                size=checkpoint.size,
                root=_b64(checkpoint.root_hash),
                note=note,
                updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )

        if saved is None:
            save_state(self.state_path, new_state())
            return MonitorResult(
                MonitorStatus.FIRST_RUN,
                f"Primera consulta: se fijó la llave {key_name} y el checkpoint de "
                f"{checkpoint.size} hojas.",
                checkpoint,
            )

        previous = Checkpoint(origin, saved.size, base64.b64decode(saved.root))
        if checkpoint.size == previous.size:
            if checkpoint.root_hash == previous.root_hash:
                return MonitorResult(
                    MonitorStatus.UNCHANGED,
                    f"Sin cambios: {checkpoint.size} hojas.",
                    checkpoint,
                    previous,
                )
            return MonitorResult(
                MonitorStatus.FORK,
                f"ALERTA: bifurcación. Hay dos checkpoints firmados de {checkpoint.size} hojas "
                "con raíces distintas: el historial fue reescrito.",
                checkpoint,
                previous,
                evidence=note,
            )
        if checkpoint.size < previous.size:
            return MonitorResult(
                MonitorStatus.ROLLBACK,
                f"ALERTA: retroceso. El registro tenía {previous.size} hojas y ahora publica "
                f"{checkpoint.size}: se borraron entradas.",
                checkpoint,
                previous,
                evidence=note,
            )

        response = self._get(
            "/ledger/proofs/consistency", {"first": previous.size, "second": checkpoint.size}
        )
        try:
            body: Any = response.json()
            hashes = [base64.b64decode(h, validate=True) for h in body["hashes"]]
            echoed = (int(body["first"]), int(body["second"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            hashes, echoed = [], (-1, -1)
        if echoed != (previous.size, checkpoint.size) or not verify_consistency(
            previous.size, checkpoint.size, previous.root_hash, checkpoint.root_hash, hashes
        ):
            return MonitorResult(
                MonitorStatus.INCONSISTENT,
                f"ALERTA: el checkpoint de {checkpoint.size} hojas no es una extensión del de "
                f"{previous.size} hojas (la prueba de consistencia no verifica): el historial "
                "fue alterado.",
                checkpoint,
                previous,
                evidence=note,
            )
        save_state(self.state_path, new_state())
        return MonitorResult(
            MonitorStatus.ADVANCED,
            f"Consistente: de {previous.size} a {checkpoint.size} hojas.",
            checkpoint,
            previous,
        )
