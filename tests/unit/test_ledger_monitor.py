"""The witness (``ledger monitor``) against an in-memory log that can be made to misbehave.

The log here is honest Merkle math (``ledger.merkle``) behind a real HTTP server on loopback
(for the CLI) or an httpx transport (for the library), so every alarm comes from a genuinely
forked, rolled-back or re-keyed log, not from a stubbed answer.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.cli import ledger_group
from ledger.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from ledger.monitor import Monitor, MonitorStatus, WitnessState, load_state, save_state
from ledger.note import Checkpoint, sign_checkpoint

ORIGIN = "carpeta.test/ledger"


class FakeLog:
    """A log whose leaves, key and published size a test controls."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.announced_key = self.key
        self.leaves: list[bytes] = []
        self.published: int | None = None  # None: the latest size
        self.broken_proofs = False
        self.fail_status: int | None = None

    def add(self, count: int) -> None:
        start = len(self.leaves)
        self.leaves += [b"leaf-%d" % i for i in range(start, start + count)]

    def _hashes(self) -> list[bytes]:
        return [leaf_hash(x) for x in self.leaves]

    def checkpoint(self) -> str:
        size = len(self.leaves) if self.published is None else self.published
        root = root_from_leaf_hashes(self._hashes()[:size])
        return sign_checkpoint(Checkpoint(ORIGIN, size, root), ORIGIN, self.key)

    def respond(self, path: str, query: dict[str, str]) -> tuple[int, str, str]:
        if self.fail_status is not None:
            return self.fail_status, "text/plain", "caído"
        if path == "/.well-known/carpeta-ledger":
            raw = self.announced_key.public_key().public_bytes_raw()
            body = {"origin": ORIGIN, "key_name": ORIGIN, "public_key": _b64(raw)}
            return 200, "application/json", json.dumps(body)
        if path == "/ledger/checkpoint":
            return 200, "text/plain; charset=utf-8", self.checkpoint()
        if path == "/ledger/proofs/consistency":
            first, second = int(query["first"]), int(query["second"])
            hashes = self._hashes()

            def get_node(level: int, index: int) -> bytes:
                return root_from_leaf_hashes(hashes[index << level : (index + 1) << level])

            proof = consistency_proof(first, second, get_node)
            if self.broken_proofs:
                proof = [bytes(32)] * len(proof)
            proof_body = {"first": first, "second": second, "hashes": [_b64(h) for h in proof]}
            return 200, "application/json", json.dumps(proof_body)
        return 404, "text/plain", "no"

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            query = {k: v for k, v in request.url.params.items()}
            status, ctype, body = self.respond(request.url.path, query)
            return httpx.Response(status, headers={"content-type": ctype}, text=body)

        return httpx.MockTransport(handler)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def log() -> FakeLog:
    fake = FakeLog()
    fake.add(5)
    return fake


def check(log: FakeLog, state: Path) -> tuple[MonitorStatus, str, int]:
    with Monitor("https://log.test/", state, client=httpx.Client(transport=log.transport())) as m:
        result = m.check_once()
    return result.status, result.message, result.exit_code


def test_first_run_pins_then_follows_consistent_growth(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "w" / "state.json"
    assert check(log, state)[0] is MonitorStatus.FIRST_RUN
    saved = load_state(state)
    assert saved is not None and saved.size == 5
    assert saved.public_key == _b64(log.key.public_key().public_bytes_raw())
    assert check(log, state)[0] is MonitorStatus.UNCHANGED
    for grow in (1, 2, 8, 17):
        log.add(grow)
        status, message, code = check(log, state)
        assert (status, code) == (MonitorStatus.ADVANCED, 0), message
    saved = load_state(state)
    assert saved is not None and saved.size == 33
    assert [p.name for p in state.parent.iterdir()] == ["state.json"]  # no temp files left


def test_same_size_different_root_is_a_fork(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    check(log, state)
    log.leaves[2] = b"rewritten"
    status, message, code = check(log, state)
    assert (status, code) == (MonitorStatus.FORK, 2)
    assert "bifurcación" in message
    # The good state is kept: the alarm repeats until someone looks.
    assert check(log, state)[0] is MonitorStatus.FORK


def test_rewritten_history_behind_growth_is_inconsistent(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    check(log, state)
    log.leaves[0] = b"rewritten"
    log.add(4)
    status, _, code = check(log, state)
    assert (status, code) == (MonitorStatus.INCONSISTENT, 2)


def test_garbage_proof_is_inconsistent(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    check(log, state)
    log.add(3)
    log.broken_proofs = True
    assert check(log, state)[0] is MonitorStatus.INCONSISTENT


def test_smaller_tree_is_a_rollback(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    log.add(3)
    check(log, state)
    log.published = 6
    status, message, code = check(log, state)
    assert (status, code) == (MonitorStatus.ROLLBACK, 2) and "retroceso" in message


def test_changed_key_and_bad_signature_alarm(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    check(log, state)
    log.key = Ed25519PrivateKey.generate()  # signs with a new key, still announces the old
    assert check(log, state)[0] is MonitorStatus.BAD_SIGNATURE
    log.announced_key = log.key  # now announces the new key too
    status, message, code = check(log, state)
    assert (status, code) == (MonitorStatus.KEY_CHANGED, 2) and "llave" in message


def test_unreachable_log_is_not_an_alarm_and_keeps_state(log: FakeLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    check(log, state)
    before = state.read_bytes()
    log.fail_status = 503
    status, message, code = check(log, state)
    assert (status, code) == (MonitorStatus.UNAVAILABLE, 1) and "503" in message
    assert state.read_bytes() == before


def test_state_is_replaced_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = WitnessState("u", "o", "k", "p", 1, "r", "n", "t")
    save_state(state, first)
    save_state(state, WitnessState("u", "o", "k", "p", 2, "r", "n", "t"))
    loaded = load_state(state)
    assert loaded is not None and loaded.size == 2
    assert load_state(tmp_path / "missing.json") is None


@pytest.fixture
def served(log: FakeLog) -> Iterator[str]:
    """The fake log behind a real HTTP server on loopback, for the CLI."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, ctype, body = log.respond(url.path, query)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_monitor_cli_exit_codes(served: str, log: FakeLog, tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    runner = CliRunner()
    first = runner.invoke(ledger_group, ["monitor", served, "--state", state, "--once"])
    assert first.exit_code == 0, first.output
    assert "Primera consulta" in first.output
    log.add(4)
    grown = runner.invoke(ledger_group, ["monitor", served, "--state", state, "--once"])
    assert grown.exit_code == 0 and "Consistente" in grown.output
    log.leaves[1] = b"rewritten"
    forked = runner.invoke(ledger_group, ["monitor", served, "--state", state, "--interval", "1"])
    assert forked.exit_code == 2
    assert "ALERTA" in forked.output and "Evidencia" in forked.output
    log.fail_status = 500
    down = runner.invoke(ledger_group, ["monitor", served, "--state", state, "--once"])
    assert down.exit_code == 1
