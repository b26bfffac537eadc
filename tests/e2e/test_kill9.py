"""SIGKILL the real server while an agency is publishing (each publication appends a ledger
event): after a restart every acknowledged event is in the log, the log verifies against its
signed checkpoint, and it is consistent with every checkpoint published before the kill."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger import proofs
from ledger.merkle import verify_consistency
from ledger.note import verify_note
from ledger.verify import verify_export
from tests.conftest import Outbox, run_async
from tests.integration.agencies import ASSERTION_TYPE, TestAgency
from wallet.db import create_engine

pytestmark = pytest.mark.e2e
CARPETA = [sys.executable, "-m", "wallet.cli"]
CURP = "BAAI810809HJCRCS02"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], log: Path, port: int) -> None:
        self.env, self.log_path, self.port = env, log, port
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*CARPETA, "serve", "--port", str(self.port), "--workers", "2"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, outbox: Outbox
) -> Iterator[tuple[Server, TestAgency, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "CARPETA_DATA_DIR": str(tmp_path / "var"),
        "CARPETA_DATABASE_URL": database_url,
        "CARPETA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARPETA_SMS_SINK": f"file:{outbox.path}",
    }
    agency = TestAgency("renapo")
    jwks = tmp_path / "renapo.jwks.json"
    jwks.write_text(json.dumps(agency.jwks()))
    done = subprocess.run(
        [
            *CARPETA,
            "agency",
            "add",
            "--id",
            "renapo",
            "--name",
            "RENAPO",
            "--jwks",
            str(jwks),
            "--category",
            "acta_nacimiento",
            "--purpose",
            "verificacion_identidad",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    server = Server(env, tmp_path / "server.log", port)
    server.start()
    try:
        yield server, agency, database_url
    finally:
        server.stop()


def _token(base: str, agency: TestAgency) -> str:
    r = httpx.post(
        base + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": agency.assertion(base + "/oauth/token"),
        },
        timeout=10,
    )
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


def test_acknowledged_events_survive_sigkill(server: tuple[Server, TestAgency, str]) -> None:
    srv, agency, database_url = server
    auth = {"Authorization": f"Bearer {_token(srv.base, agency)}"}
    acknowledged: list[int] = []
    checkpoints: list[str] = []
    stop = threading.Event()

    def publisher(worker: int) -> None:
        with httpx.Client(base_url=srv.base, timeout=5) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = http.put(
                        f"/api/v1/agency/records/W{worker}-{n}",
                        json={
                            "curp": CURP,
                            "category": "acta_nacimiento",
                            "title": "Acta",
                            "data": {"n": n},
                        },
                        headers=auth,
                    )
                except httpx.HTTPError:
                    return  # the server died under us: that request was not acknowledged
                if r.status_code == 201:
                    acknowledged.append(r.json()["ledger"]["queue_id"])

    def watcher() -> None:
        with httpx.Client(base_url=srv.base, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = http.get("/ledger/checkpoint")
                except httpx.HTTPError:
                    return
                if r.status_code == 200 and (not checkpoints or checkpoints[-1] != r.text):
                    checkpoints.append(r.text)
                time.sleep(0.05)

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=watcher))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while (len(acknowledged) < 150 or len(checkpoints) < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()  # mid-flight: publishers are still sending
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 150 and len(checkpoints) >= 3

    srv.start()
    key = httpx.get(srv.base + "/.well-known/carpeta-ledger", timeout=5).json()
    public = base64.b64decode(key["public_key"])

    async def after_restart() -> tuple[list[int | None], str, list[bytes]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                deadline = time.monotonic() + 30
                while True:  # the sequencer integrates what was queued before the kill
                    indices = [await proofs.leaf_index_for(conn, q) for q in acknowledged]
                    latest = await proofs.latest_checkpoint(conn)
                    await conn.rollback()
                    if all(i is not None for i in indices) and latest is not None:
                        break
                    assert time.monotonic() < deadline, "acknowledged events missing after restart"
                    await asyncio.sleep(0.2)
            lines = [
                leaf.json_line()
                async for leaf in proofs.export_leaves(engine, tree_size=latest.size)
            ]
            return indices, latest.note, lines
        finally:
            await engine.dispose()

    indices, final_note, lines = run_async(after_restart)
    assert len(set(indices)) == len(acknowledged)  # each acknowledged event is exactly one leaf
    final = verify_note(final_note, key["key_name"], public)
    result = verify_export([line.decode() for line in lines], final_note, key["public_key"])
    assert result.ok, result.message()
    for note in checkpoints:
        earlier = verify_note(note, key["key_name"], public)
        if earlier.size == 0:
            continue
        proof = httpx.get(
            srv.base + "/ledger/proofs/consistency",
            params={"first": earlier.size, "second": final.size},
            timeout=5,
        ).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert verify_consistency(
            earlier.size, final.size, earlier.root_hash, final.root_hash, hashes
        )
