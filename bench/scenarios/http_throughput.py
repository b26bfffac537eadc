"""HTTP throughput of one uvicorn worker: the dashboard summary and an agency data request
against a bare msgspec route of the same app (SPEC "Budgets").

* **server** — ``python -m bench.serve_app``: the real app from ``create_app`` on a real
  SQLite file (WAL) in a temp dir, one worker on loopback, with ``GET /bench/hello`` (a
  tiny msgspec Struct, no dependencies) registered on the same app instance.
* **data** — seeded through the real services before the server starts, as ``carpeta demo``
  does: the demo's five agencies (keys on disk), one citizen with a typical dashboard
  (5 procedures, 10 records, 5 consents) and ``subjects`` citizens, each with a birth
  certificate published by RENAPO and an active periodic consent for IMSS
  (``{"unit": "hour", "value": 1000}``). Tokens come over HTTP: the citizen signs in with
  CURP + SMS code (the ``file:`` sink), IMSS gets a token with an RFC 7523 assertion.
* **load** — ``python -m bench.http_load`` (raw-socket keep-alive client, ``connections``
  connections, closed loop). Server pinned to one CPU and load generator to another with
  ``taskset`` when there are two. A warm-up of each route, then ``rounds`` alternating
  rounds of hello / summary / data_request, ``duration`` seconds each; the median of the
  rounds is reported.
* **data_request** — ``POST /api/v1/agency/data-requests`` (IMSS asks for the birth
  certificate, purpose ``alta_beneficiario``, naming the consent; no ``Idempotency-Key``),
  cycling over the subjects. Each is a consent decision, a consent use (counters and a row
  of the use log), a record read, a signed receipt and a ledger event in one write
  transaction (group-committed with the releases that arrive in the same turn of the event
  loop). The load is spread over many subjects, as an agency's traffic is; with
  ``hour/1000`` consents the frequency window never needs counting here (it is counted only
  once a consent's lifetime uses reach its per-period limit: one indexed count).

Only 200 answers count towards requests/s. The ledger sequencer (running in the same worker,
as in production) must have integrated every event within 2 s after the load stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.algorithms import OKPAlgorithm

from bench.http_load import Phase, PhaseResult, build_request, plan_json
from bench.registry import Check, Metric, Params, Result, scenario
from bench.serve_app import HELLO_PATH, bench_settings
from consent.periods import Frequency, TimeUnit
from eidentity.assurance import AssuranceLevel
from eidentity.clock import SystemClock
from eidentity.curp import make_curp
from ledger.storage import leaves, queue
from wallet.demo_data import seed_agencies
from wallet.folder.schemas import ProcedureIn, RecordIn, Step
from wallet.services import build_services
from wallet.settings import Settings

ROUTES = ("hello", "summary", "data_request")
SUMMARY_PATH = "/api/v1/me/summary"
DATA_PATH = "/api/v1/agency/data-requests"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CONSUMER, PROVIDER = "imss", "renapo"
CATEGORY, PURPOSE = "acta_nacimiento", "alta_beneficiario"
LEDGER_DEADLINE = 2.0
ROOT = Path(__file__).resolve().parents[2]


# -- seeding ---------------------------------------------------------------------------------


def _curp(i: int, sex: str = "H") -> str:
    return make_curp("BEGA", date(1950, 1, 1) + timedelta(days=i), sex, "DF", "NCH")


DASHBOARD_CURP = make_curp("LOHG", date(1985, 3, 12), "M", "DF", "PRD")
DASHBOARD_PHONE = "5519990001"

#: A typical dashboard: 5 procedures, 10 records, 5 consents (SPEC "Budgets").
PROCEDURES = (
    ("sat", "DA2025", "Declaración anual 2025: devolución de saldo a favor", "action_required"),
    ("imss", "BEN-1", "Alta de beneficiario (hijo) en el IMSS", "in_review"),
    ("sep", "TIT-1", "Emisión de título electrónico", "resolved"),
    ("bienestar", "PB-1", "Actualización de datos del padrón de Bienestar", "open"),
    ("renapo", "CURP-1", "Corrección de datos en la CURP", "open"),
)
RECORDS = (
    ("renapo", "acta_nacimiento", "Acta de nacimiento"),
    ("renapo", "curp_certificada", "Constancia de CURP"),
    ("sat", "constancia_situacion_fiscal", "Constancia de situación fiscal"),
    ("imss", "nss_imss", "Número de seguridad social"),
    ("imss", "semanas_cotizadas", "Semanas cotizadas"),
    ("sep", "certificado_estudios", "Certificado de bachillerato"),
    ("sep", "titulo_profesional", "Título de Licenciatura en Contaduría"),
    ("bienestar", "padron_bienestar", "Pensión para el Bienestar"),
    ("bienestar", "comprobante_domicilio", "Comprobante de domicilio"),
    ("sat", "acta_nacimiento", "Acta de nacimiento (copia SAT)"),
)
CONSENTS = (
    ("sat", "constancia_situacion_fiscal", "declaracion_anual"),
    ("imss", "acta_nacimiento", "alta_beneficiario"),
    ("sep", "acta_nacimiento", "inscripcion"),
    ("bienestar", "acta_nacimiento", "programa_social"),
    ("renapo", "acta_nacimiento", "verificacion_identidad"),
)


@dataclass(frozen=True, slots=True)
class Seeded:
    #: (CURP, consent id) of every data subject.
    subjects: list[tuple[str, str]]
    agency_jwk: dict[str, Any]


async def seed(settings: Settings, subjects: int) -> Seeded:
    """Everything through the real services, in one transaction (like ``carpeta demo``)."""
    services = await build_services(settings, SystemClock())
    try:
        now = services.clock.now()
        keys_dir = settings.data_dir / "agencies"
        out: list[tuple[str, str]] = []
        async with services.sessions() as session:
            await seed_agencies(services, session, keys_dir)
            citizen = await services.registry.enrol(
                session,
                curp=DASHBOARD_CURP,
                phone=DASHBOARD_PHONE,
                name="Bench",
                now=now,
                via="bench",
            )
            me = citizen.citizen.id
            for agency, external, title, status in PROCEDURES:
                await services.publisher.upsert_procedure(
                    session,
                    agency,
                    external,
                    ProcedureIn(
                        curp=DASHBOARD_CURP,
                        title=title,
                        status=status,  # type: ignore[arg-type]
                        steps=[
                            Step("Solicitud recibida", True, date(2026, 1, 10)),
                            Step("Revisión"),
                        ],
                        next_action="Revisa tu correo." if status == "action_required" else None,
                        contact="800 000 0000",
                    ),
                    now,
                )
            for n, (agency, category, title) in enumerate(RECORDS):
                await services.publisher.upsert_record(
                    session,
                    agency,
                    f"REC-{n}",
                    RecordIn(curp=DASHBOARD_CURP, category=category, title=title, data={"n": n}),
                    now,
                )
            for consumer, category, purpose in CONSENTS:
                await services.consent_service.grant(
                    session,
                    me,
                    consumer,
                    [category],
                    purpose,
                    None,
                    now + timedelta(days=90),
                    None,
                    AssuranceLevel.LOW,
                    now,
                )
            for i in range(subjects):
                curp = _curp(i)
                enrolled = await services.registry.enrol(
                    session, curp=curp, phone=f"55{20_000_000 + i:08d}", now=now, via="bench"
                )
                await services.publisher.upsert_record(
                    session,
                    PROVIDER,
                    f"ACTA-{i:06d}",
                    RecordIn(
                        curp=curp,
                        category=CATEGORY,
                        title="Acta de nacimiento",
                        data={
                            "nombre": f"Persona {i}",
                            "fecha_nacimiento": (date(1950, 1, 1) + timedelta(days=i)).isoformat(),
                            "lugar_nacimiento": "Ciudad de México",
                            "numero_acta": f"{i:05d}",
                        },
                    ),
                    now,
                )
                stored = await services.consent_service.grant(
                    session,
                    enrolled.citizen.id,
                    CONSUMER,
                    [CATEGORY],
                    PURPOSE,
                    "Alta de beneficiario",
                    now + timedelta(days=30),
                    Frequency(TimeUnit.HOUR, 1000),
                    AssuranceLevel.LOW,
                    now,
                )
                out.append((curp, stored.row.consent_id))
            await session.commit()
    finally:
        await services.engine.dispose()
    jwk = json.loads((keys_dir / f"{CONSUMER}.jwk.json").read_text(encoding="utf-8"))
    return Seeded(out, dict(jwk))


def ledger_events(database: Path) -> int:
    """Events written so far (queued + integrated), read beside the server (WAL)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        conn.execute("PRAGMA busy_timeout=5000")
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM {queue.name}) + (SELECT count(*) FROM {leaves.name})"
        ).fetchone()
    return int(row[0])


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_pins(enabled: bool) -> tuple[list[str], list[str], str]:
    """``taskset`` prefixes for server and load generator, and a note on what was done."""
    if not enabled:
        return [], [], "not pinned (pin=False)"
    taskset = shutil.which("taskset")
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = list(range(os.cpu_count() or 1))
    if taskset is None or len(cpus) < 2:
        found = "missing" if taskset is None else "found"
        return [], [], f"not pinned (taskset {found}, {len(cpus)} CPU(s))"
    server, load = str(cpus[0]), str(cpus[1])
    return (
        [taskset, "-c", server],
        [taskset, "-c", load],
        f"server pinned to CPU {server}, load generator to CPU {load} (taskset)",
    )


def start_server(
    pin: list[str], data_dir: Path, port: int, log_level: str, cprofile: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """``python -m bench.serve_app`` in its own session, output to ``log_path``."""
    command = [
        *pin,
        sys.executable,
        "-m",
        "bench.serve_app",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--log-level",
        log_level,
    ]
    if cprofile:
        command += ["--cprofile", str(Path(cprofile).resolve())]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(ROOT),
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL; only our own process."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


async def wait_healthy(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/healthz", timeout=1)).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy after 60 s:\n{_tail(log)}")
        await asyncio.sleep(0.1)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# -- tokens over HTTP ------------------------------------------------------------------------


async def agency_token(client: httpx.AsyncClient, issuer: str, jwk: dict[str, Any]) -> str:
    key = OKPAlgorithm.from_jwk(json.dumps(jwk))
    issued = int(time.time())
    assertion = jwt.encode(
        {
            "iss": CONSUMER,
            "sub": CONSUMER,
            "aud": issuer + "/oauth/token",
            "iat": issued,
            "exp": issued + 120,
            "jti": uuid.uuid4().hex,
        },
        key,  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": str(jwk["kid"])},
    )
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def citizen_token(client: httpx.AsyncClient, outbox: Path) -> str:
    """CURP + SMS code, the code read from the ``file:`` SMS sink."""
    started = await client.post("/auth/curp/start", json={"curp": DASHBOARD_CURP})
    started.raise_for_status()
    otp_id = started.json()["otp_id"]
    deadline = time.monotonic() + 10
    while (code := _last_code(outbox)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("no SMS code arrived in the file sink")
        await asyncio.sleep(0.05)
    verified = await client.post("/auth/curp/verify", json={"otp_id": otp_id, "code": code})
    verified.raise_for_status()
    return str(verified.json()["access_token"])


def _last_code(outbox: Path) -> str | None:
    if not outbox.exists():
        return None
    for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
        found = re.findall(r"(?<!\d)\d{6}(?!\d)", json.loads(line)["text"]) if line else []
        if found:
            return str(found[0])
    return None


async def checkpoint_size(client: httpx.AsyncClient) -> int:
    response = await client.get("/ledger/checkpoint")
    if response.status_code != 200:
        return -1
    return int(response.text.splitlines()[1])


# -- the scenario ----------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ok_rps(result: PhaseResult) -> float:
    return result.statuses.get(200, 0) / result.duration if result.duration else 0.0


async def run_load(
    prefix: list[str], plan: dict[str, Any], directory: Path, limit: float
) -> list[PhaseResult]:
    plan_path = directory / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "bench.http_load",
        str(plan_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}): {stderr.decode()}")
    return [PhaseResult.from_json(r) for r in json.loads(stdout)]


@scenario(
    "http_throughput",
    defaults={
        "duration": 8.0,
        "warmup": 1.0,
        "rounds": 3,
        "connections": 32,
        "subjects": 200,
        "pause": 0.5,
        "pin": True,
        "log_level": "INFO",
        "accept_encoding": "gzip, deflate, br",
        "cprofile": "",
    },
    smoke={"duration": 0.3, "warmup": 0.1, "connections": 4, "subjects": 8, "pause": 0.1},
)
async def run(params: Params) -> Result:
    """Summary and data-request req/s vs a bare msgspec route, one uvicorn worker, SQLite."""
    duration, warmup = float(params["duration"]), float(params["warmup"])
    rounds, connections = int(params["rounds"]), int(params["connections"])
    subjects, pause = int(params["subjects"]), float(params["pause"])
    encoding = str(params["accept_encoding"])
    server_pin, load_pin, pin_note = cpu_pins(bool(params["pin"]))
    result = Result()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        directory = Path(tmp)
        data_dir = directory / "var"
        port = free_port()
        settings = bench_settings(data_dir, port, str(params["log_level"]))
        t0 = time.perf_counter()
        seeded = await seed(settings, subjects)
        seed_time = time.perf_counter() - t0
        log_path = directory / "server.log"
        cprofile = str(params["cprofile"])
        server = start_server(
            server_pin, data_dir, port, str(params["log_level"]), cprofile, log_path
        )
        base = settings.issuer
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                await wait_healthy(client, server, log_path)
                agency = await agency_token(client, base, seeded.agency_jwk)
                citizen = await citizen_token(client, data_dir / "sms.jsonl")
                phases, probes = _phases(
                    seeded, agency, citizen, port, encoding, duration, warmup, rounds, connections
                )
                for name, request in probes.items():
                    await _probe(client, name, request)
                database = data_dir / "carpeta.db"
                events_before = ledger_events(database)
                planned = sum(p.duration for p in phases) + pause * len(phases)
                loads = await run_load(
                    load_pin,
                    plan_json("127.0.0.1", port, phases, pause, server.pid),
                    directory,
                    planned + 120,
                )
                stopped = time.perf_counter()
                written = sum(
                    r.statuses.get(s, 0) + r.drained.get(s, 0)
                    for r in loads
                    if "data_request" in r.name
                    for s in (200, 403)
                )
                target = events_before + written
                caught_up: float | None = None
                size = -1
                while time.perf_counter() - stopped < LEDGER_DEADLINE + 8:
                    size = await checkpoint_size(client)
                    if size >= target:
                        caught_up = time.perf_counter() - stopped
                        break
                    await asyncio.sleep(0.02)
                events_after = ledger_events(database)
        finally:
            stop_process(server)
        server_log = log_path.read_text(encoding="utf-8", errors="replace")

    _report(result, loads, rounds, duration, connections, subjects)
    errors = sum(
        1 for line in server_log.splitlines() if '"level": "error"' in line or "Traceback" in line
    )
    if caught_up is not None and caught_up <= LEDGER_DEADLINE:
        ledger_note = (
            f"ledger sequencer kept up: checkpoint reached all {target} events "
            f"{caught_up * 1000:.0f} ms after the load stopped (≤ {LEDGER_DEADLINE:.0f} s)"
        )
    elif caught_up is not None:
        ledger_note = (
            f"ledger sequencer LATE: all {target} events integrated only "
            f"{caught_up:.2f} s after the load stopped (budget {LEDGER_DEADLINE:.0f} s)"
        )
    else:
        ledger_note = (
            f"ledger sequencer did NOT catch up: checkpoint size {size} of {target} "
            f"events {LEDGER_DEADLINE + 8:.0f} s after the load stopped"
        )
    if events_after != target:
        ledger_note += f" (database holds {events_after} events, expected {target})"
    result.notes += [
        ledger_note,
        f"{pin_note}; one uvicorn worker (uvloop, httptools), SQLite WAL in a temp dir, "
        f"{connections} keep-alive connections, closed loop; {rounds} alternating rounds of "
        f"{duration:g} s per route after {warmup:g} s warm-up each; medians reported. Only "
        "200 answers count towards req/s.",
        f"Seeded through the services in {seed_time:.1f} s: dashboard citizen (5 procedures, "
        f"10 records, 5 consents), {subjects} data subjects each with a birth certificate and "
        "an hourly-1000 consent for IMSS; requests sent with "
        f"Accept-Encoding: {encoding!r}; app log level {params['log_level']} (JSON access "
        "log to a file, as in production).",
        f"Server log: {errors} error line(s). Machine load (1-min average) at the end: "
        f"{os.getloadavg()[0]:.2f}.",
    ]
    return result


def _phases(
    seeded: Seeded,
    agency: str,
    citizen: str,
    port: int,
    encoding: str,
    duration: float,
    warmup: float,
    rounds: int,
    connections: int,
) -> tuple[list[Phase], dict[str, bytes]]:
    host = f"127.0.0.1:{port}"
    common = {"Accept-Encoding": encoding, "User-Agent": "bench-http-load"}
    requests: dict[str, tuple[bytes, ...]] = {
        "hello": (build_request("GET", HELLO_PATH, host=host, headers=common),),
        "summary": (
            build_request(
                "GET",
                SUMMARY_PATH,
                host=host,
                headers={**common, "Authorization": f"Bearer {citizen}"},
            ),
        ),
        "data_request": tuple(
            build_request(
                "POST",
                DATA_PATH,
                host=host,
                headers={
                    **common,
                    "Authorization": f"Bearer {agency}",
                    "Content-Type": "application/json",
                },
                body=json.dumps(
                    {"curp": curp, "category": CATEGORY, "purpose": PURPOSE, "consent_id": cid},
                    separators=(",", ":"),
                ).encode(),
            )
            for curp, cid in seeded.subjects
        ),
    }
    phases = [Phase(f"warmup_{name}", requests[name], warmup, connections) for name in ROUTES]
    phases += [
        Phase(f"{name}#{r + 1}", requests[name], duration, connections)
        for r in range(rounds)
        for name in ROUTES
    ]
    return phases, {name: reqs[0] for name, reqs in requests.items()}


async def _probe(client: httpx.AsyncClient, name: str, raw: bytes) -> None:
    """Send one request as the load will (parsed back from its bytes): it must answer 200."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers.pop("Host", None)
    headers.pop("Content-Length", None)
    response = await client.request(method, path, headers=headers, content=body or None)
    if response.status_code != 200:
        raise RuntimeError(
            f"{name}: {method} {path} answered {response.status_code}: {response.text}"
        )


def _report(
    result: Result,
    loads: list[PhaseResult],
    rounds: int,
    duration: float,
    connections: int,
    subjects: int,
) -> None:
    measured = {name: [r for r in loads if r.name.split("#")[0] == name] for name in ROUTES}
    rps = {name: _median([_ok_rps(r) for r in runs]) for name, runs in measured.items()}
    for name in ROUTES:
        runs = measured[name]
        result.metrics += [
            Metric(f"{name} (median)", rps[name], "req/s"),
            Metric(f"{name} p50 (median)", _median([r.p50_ms for r in runs]), "ms"),
            Metric(f"{name} p99 (median)", _median([r.p99_ms for r in runs]), "ms"),
        ]
        result.metrics += [
            Metric(f"{name} round {i + 1}", _ok_rps(r), "req/s") for i, r in enumerate(runs)
        ]
        result.metrics.append(
            Metric(f"{name} response size", _median([r.mean_response_bytes for r in runs]), "B")
        )
    hello = rps["hello"] or float("nan")
    summary_ratio, data_ratio = rps["summary"] / hello, rps["data_request"] / hello
    cpu = {
        name: _median([c for r in runs if (c := r.server_cpu_ms_per_request) is not None])
        for name, runs in measured.items()
    }
    busy = {
        name: _median([b for r in runs if (b := r.server_busy) is not None])
        for name, runs in measured.items()
    }
    if all(cpu.values()):
        result.metrics += [
            Metric(f"{name} server CPU per request (median)", cpu[name], "ms") for name in ROUTES
        ]
        result.metrics += [
            Metric(
                "summary / hello by server CPU per request", cpu["hello"] / cpu["summary"], "ratio"
            ),
            Metric(
                "data_request / hello by server CPU per request",
                cpu["hello"] / cpu["data_request"],
                "ratio",
            ),
        ]
        result.notes.append(
            "Server CPU use during the windows (fraction of one CPU, medians): "
            + ", ".join(f"{name} {busy[name]:.2f}" for name in ROUTES)
            + ". Below ~0.95 the server was not the bottleneck (CPU stolen by other processes "
            "on its core, or waiting); CPU per request is the figure to trust on a busy machine."
        )
    data_runs = measured["data_request"] + [r for r in loads if r.name == "warmup_data_request"]
    permits = sum(r.statuses.get(200, 0) + r.drained.get(200, 0) for r in data_runs)
    refusals = sum(r.statuses.get(403, 0) + r.drained.get(403, 0) for r in data_runs)
    result.metrics += [
        Metric("summary / hello", summary_ratio, "ratio"),
        Metric("data_request / hello", data_ratio, "ratio"),
        Metric("data_request answered 200 (all phases)", permits, "requests"),
        Metric("data_request answered 403 (all phases)", refusals, "requests"),
    ]
    result.checks += [
        Check("summary ≥ 60 % of hello (req/s, 1 worker)", summary_ratio, ">=", 0.6),
        Check("data_request ≥ 30 % of hello (req/s, 1 worker)", data_ratio, ">=", 0.3),
    ]
    other: dict[str, dict[int, int]] = {}
    client_errors = 0
    for r in loads:
        client_errors += r.errors
        odd = {
            s: n
            for s, n in r.statuses.items()
            if s != 200 and not (r.name.startswith(("data_request", "warmup_data")) and s == 403)
        }
        if odd:
            other[r.name] = odd
    if other or client_errors:
        samples = [s for r in loads for s in r.error_samples][:3]
        result.notes.append(
            f"Unexpected answers: {json.dumps({k: v for k, v in other.items()})}; "
            f"client errors {client_errors} {samples}"
        )
    result.notes.append(
        f"data_request cycled over {subjects} subjects: {permits} permits (200) and {refusals} "
        f"refusals (403) in all phases; {rounds} rounds × {duration:g} s × {connections} "
        "connections."
    )
