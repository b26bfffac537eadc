"""The dev CA's memory: which certificates it issued and which it revoked.

A JSON file next to the CA key, rewritten atomically, and re-read on every use so that a
``carpeta dev-ca serve-ocsp`` process sees revocations made by another command.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

#: Like SAT's "3000100000040000xxxx": 12 fixed digits, then an 8-digit counter.
SERIAL_PREFIX = "300010000005"

_lock = threading.Lock()
T = TypeVar("T")


@dataclass
class CaState:
    next_counter: int = 1
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)

    def allocate(self) -> str:
        number = f"{SERIAL_PREFIX}{self.next_counter:08d}"
        self.next_counter += 1
        return number

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "next_counter": self.next_counter,
            "issued": self.issued,
            "revoked": self.revoked,
        }


def load_state(path: Path) -> CaState:
    data = json.loads(path.read_text("utf-8"))
    return CaState(int(data["next_counter"]), dict(data["issued"]), dict(data["revoked"]))


def save_state(path: Path, state: CaState) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True), "utf-8")
    os.replace(temporary, path)


class StateFile:
    """Read-modify-write the state under a lock (threads of one process)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> CaState:
        with _lock:
            return load_state(self.path)

    def update(self, change: Callable[[CaState], T]) -> T:
        """Apply ``change(state)`` and persist; return what ``change`` returned."""
        with _lock:
            state = load_state(self.path)
            result = change(state)
            save_state(self.path, state)
            return result


def revocation_entry(when: datetime, reason: str) -> dict[str, Any]:
    return {"revoked_at": when.isoformat(), "reason": reason}
