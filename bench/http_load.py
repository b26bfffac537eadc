"""A small, fast HTTP/1.1 load generator: asyncio protocols on raw sockets, keep-alive.

Closed loop: each of N connections sends one request, waits for the whole response (framed
by ``Content-Length``; anything else counts as a protocol error and the connection is
reopened), records its latency and sends the next one, for a fixed duration. Requests are
raw bytes built once (:func:`build_request`) and cycled round-robin across all connections,
so a phase can spread its load over many subjects. Responses that finish after the deadline
are drained and counted apart (``drained``), so every request the server answered is known.

httpx is far too slow to saturate a server from one core; this client does little more than
``bytes.find`` per response. It uses uvloop when installed.

Run as a process (``python -m bench.http_load PLAN.json``) so it can be pinned to its own
CPU with ``taskset``; it prints one JSON object per phase (a list) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

MAX_HEAD = 64 * 1024
_NO_BODY = frozenset({204, 304})


def build_request(
    method: str,
    path: str,
    *,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """One HTTP/1.1 request, ready to write as is (keep-alive is HTTP/1.1's default)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


@dataclass(frozen=True, slots=True)
class Phase:
    """``connections`` clients sending ``requests`` (cycled) for ``duration`` seconds."""

    name: str
    requests: tuple[bytes, ...]
    duration: float
    connections: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "duration": self.duration,
            "connections": self.connections,
            "requests": [base64.b64encode(r).decode() for r in self.requests],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Phase:
        return cls(
            name=str(body["name"]),
            requests=tuple(base64.b64decode(r) for r in body["requests"]),
            duration=float(body["duration"]),
            connections=int(body["connections"]),
        )


@dataclass(slots=True)
class PhaseResult:
    name: str
    connections: int
    #: The measured window (seconds), from the first request sent to the deadline.
    duration: float
    #: Responses completed inside the window, by status.
    statuses: dict[int, int]
    #: Responses to requests in flight at the deadline, completed afterwards, by status.
    drained: dict[int, int]
    #: Framing errors, refused or reset connections (each reopens the connection).
    errors: int
    reconnects: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: Mean response size (head + body) in the window.
    mean_response_bytes: float
    error_samples: list[str] = field(default_factory=list)
    #: CPU seconds the server process used during the window (all its threads), if known.
    server_cpu_s: float | None = None

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.completed / self.duration if self.duration > 0 else 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        """Server CPU per answer: robust to a noisy machine, unlike requests/s."""
        if self.server_cpu_s is None or not self.completed:
            return None
        return self.server_cpu_s * 1000 / self.completed

    @property
    def server_busy(self) -> float | None:
        """Fraction of one CPU the server used (≈ 1 when it is the bottleneck)."""
        if self.server_cpu_s is None or self.duration <= 0:
            return None
        return self.server_cpu_s / self.duration

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["statuses"] = {str(k): v for k, v in self.statuses.items()}
        body["drained"] = {str(k): v for k, v in self.drained.items()}
        body["completed"] = self.completed
        body["rps"] = self.rps
        body["server_cpu_ms_per_request"] = self.server_cpu_ms_per_request
        body["server_busy"] = self.server_busy
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PhaseResult:
        derived = {"completed", "rps", "server_cpu_ms_per_request", "server_busy"}
        fields = {k: v for k, v in body.items() if k not in derived}
        fields["statuses"] = {int(k): int(v) for k, v in body["statuses"].items()}
        fields["drained"] = {int(k): int(v) for k, v in body["drained"].items()}
        return cls(**fields)


def process_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of ``pid`` (every thread) from ``/proc``; ``None`` off Linux."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), int(q * len(ordered) + 0.999999)))
    return ordered[rank - 1]


class _Run:
    """State shared by one phase's connections."""

    def __init__(self, phase: Phase) -> None:
        self.requests = phase.requests
        self.next_index = 0
        self.deadline = float("inf")
        self.stopping = False
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.drained: dict[int, int] = {}
        self.bytes = 0
        self.errors = 0
        self.reconnects = 0
        self.error_samples: list[str] = []
        self.in_flight = 0
        self.idle = asyncio.Event()

    def next_request(self) -> bytes:
        request = self.requests[self.next_index % len(self.requests)]
        self.next_index += 1
        return request

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


class _Client(asyncio.Protocol):
    """One keep-alive connection: request, whole response, next request."""

    def __init__(self, run: _Run, on_lost: Callable[[_Client], None]) -> None:
        self.run = run
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.need = -1  # total bytes of the current response, once its head is parsed
        self.status = 0
        self.sent_at = 0.0
        self.busy = False
        self.keep = True
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self) -> None:
        assert self.transport is not None
        self.busy = True
        self.run.in_flight += 1
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.next_request())

    def _finish(self) -> None:
        run = self.run
        self.busy = False
        run.in_flight -= 1
        if run.in_flight == 0 and run.stopping:
            run.idle.set()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            if self.need < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        self._fail("response head too large")
                    return
                head = bytes(buffer[:end]).lower()
                try:
                    status = int(head[9:12])
                except ValueError:
                    self._fail(f"bad status line {head[:40]!r}")
                    return
                at = head.find(b"\r\ncontent-length:")
                if at >= 0:
                    stop = head.find(b"\r\n", at + 2)
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                elif status in _NO_BODY or 100 <= status < 200:
                    length = 0
                else:
                    self._fail(f"status {status} without Content-Length")
                    return
                self.status = status
                self.need = end + 4 + length
                self.keep = b"\r\nconnection: close" not in head
            if len(buffer) < self.need:
                return
            done = time.perf_counter()
            size = self.need
            del buffer[:size]
            self.need = -1
            if buffer:
                self._fail("bytes after the response (unsolicited data)")
                return
            self._record(self.status, done, size)
            if not self.keep:
                self._close()
                return
            if self.run.stopping or done >= self.run.deadline:
                self._close()
                return
            self.send()
            return

    def _record(self, status: int, done: float, size: int) -> None:
        run = self.run
        if done < run.deadline:
            run.latencies.append(done - self.sent_at)
            run.statuses[status] = run.statuses.get(status, 0) + 1
            run.bytes += size
        else:
            run.drained[status] = run.drained.get(status, 0) + 1
        self._finish()

    def _fail(self, text: str) -> None:
        self.run.error(text)
        if self.busy:
            self._finish()
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:  # the server closed (or reset) with our request unanswered
            self.run.error(f"connection lost mid-request: {exc!r}")
            self._finish()
        self.closed = True
        self.on_lost(self)


async def run_phase(
    host: str, port: int, phase: Phase, server_pid: int | None = None
) -> PhaseResult:
    """One phase: open every connection, then go; returns when all answers are in."""
    loop = asyncio.get_running_loop()
    run = _Run(phase)
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def reopen() -> None:
        try:
            _, client = await loop.create_connection(lambda: _Client(run, lost), host, port)
        except OSError as exc:
            run.error(f"connect: {exc!r}")
            await asyncio.sleep(0.05)
            if time.perf_counter() < run.deadline and not run.stopping:
                spawn(reopen())
            return
        if time.perf_counter() < run.deadline and not run.stopping:
            client.send()
        else:
            client._close()

    def lost(client: _Client) -> None:
        if not run.stopping and time.perf_counter() < run.deadline:
            run.reconnects += 1
            spawn(reopen())

    clients: list[_Client] = []
    for _ in range(phase.connections):
        _, client = await loop.create_connection(lambda: _Client(run, lost), host, port)
        clients.append(client)
    cpu_before = process_cpu_seconds(server_pid)
    started = time.perf_counter()
    run.deadline = started + phase.duration
    for client in clients:
        client.send()
    await asyncio.sleep(max(0.0, run.deadline - time.perf_counter()))
    cpu_after = process_cpu_seconds(server_pid)
    run.stopping = True
    if run.in_flight:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.idle.wait(), 30.0)
    for client in clients:
        client._close()
    for task in list(tasks):
        task.cancel()
    await asyncio.sleep(0)  # let the transports close
    ordered = sorted(run.latencies)
    completed = len(ordered)
    return PhaseResult(
        name=phase.name,
        connections=phase.connections,
        duration=phase.duration,
        statuses=dict(sorted(run.statuses.items())),
        drained=dict(sorted(run.drained.items())),
        errors=run.errors,
        reconnects=run.reconnects,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p90_ms=percentile(ordered, 0.90) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else 0.0,
        mean_response_bytes=run.bytes / completed if completed else 0.0,
        error_samples=run.error_samples,
        server_cpu_s=(
            cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
        ),
    )


async def run_plan(
    host: str,
    port: int,
    phases: Sequence[Phase],
    pause: float = 0.0,
    server_pid: int | None = None,
) -> list[PhaseResult]:
    """Phases back to back, with ``pause`` seconds of quiet between them."""
    results: list[PhaseResult] = []
    for i, phase in enumerate(phases):
        if i and pause > 0:
            await asyncio.sleep(pause)
        results.append(await run_phase(host, port, phase, server_pid))
    return results


def plan_json(
    host: str, port: int, phases: Sequence[Phase], pause: float, server_pid: int | None = None
) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "pause": pause,
        "server_pid": server_pid,
        "phases": [p.to_json() for p in phases],
    }


def _runner() -> Callable[[Coroutine[Any, Any, list[PhaseResult]]], list[PhaseResult]]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        return asyncio.run
    return uvloop.run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__)
    parser.add_argument("plan", type=Path, help="JSON: host, port, pause, phases")
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text(encoding="utf-8"))
    phases = [Phase.from_json(p) for p in plan["phases"]]
    run = _runner()
    pid = plan.get("server_pid")
    results = run(
        run_plan(
            str(plan["host"]),
            int(plan["port"]),
            phases,
            float(plan["pause"]),
            int(pid) if pid is not None else None,
        )
    )
    json.dump([r.to_json() for r in results], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
