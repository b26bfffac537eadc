"""What the PWA browser tests share: one seeded server behind a byte-counting proxy, one
Chromium, phone-sized browser contexts, axe-core, and a place to record measurements.

The server is the real one: ``carpeta demo --no-serve`` seeds agencies, citizens, the dev CA
and e.firma files into a temporary data directory, then ``carpeta serve`` runs on SQLite. Until
the app mounts the PWA routes itself, ``python -m tests.e2e.pwa_support`` serves the same app
with them added (``create_app`` + ``app.register``); the switch is automatic.

The proxy sits between Chromium and the server and counts every byte each way, so budgets
include what CDP's page events cannot see (the service worker's own downloads), and tests can
prove that a secret never went over the wire.

Browser and server are started once per test session, lazily, and stopped at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
)

from ledger.events import LedgerEvent
from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from ledger.note import Checkpoint, sign_checkpoint
from pwa.assets import AssetTable, build
from tests.conftest import Outbox

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CARPETA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_VERSION = "4.10.3"
RESULTS = ROOT / "bench" / "results" / "pwa.json"

# Demo people (wallet.demo.CITIZENS); the first has procedures, records and an e.firma.
GUADALUPE = ("LOHG850312MDFPRD09", "5510000001", "LOHG850312QK5")
LUIS = ("RATL781102HJCMRS08", "3310000002", "RATL781102AB3")
JUANA = ("PECJ920721MOCRRN05", "9510000003", None)
DEMO_PASSWORD = "Demo2026"

#: Optional endpoints: on a server without them the app hides their screens after a 404.
COMING_SOON = ("/api/v1/me/consent-requests", "/api/v1/me/consents", "/api/v1/me/activity")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------
# Byte-counting proxy
# ------------------------------------------------------------------------------------------


class CountingProxy:
    """TCP relay on loopback counting bytes each way; keeps what clients sent (up to a cap)."""

    CAP = 16 * 1024 * 1024

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0
        self.up = 0
        self.sent = bytearray()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counting-proxy", daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(10)
        return self.port

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, upward: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if upward:
                        self.up += len(chunk)
                        if len(self.sent) < self.CAP:
                            self.sent += chunk
                    else:
                        self.down += len(chunk)
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def reset(self) -> None:
        self.down = 0
        self.up = 0
        self.sent = bytearray()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


# ------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------


@dataclass
class PwaServer:
    base: str
    direct: str
    workdir: Path
    outbox: Outbox
    proxy: CountingProxy
    process: subprocess.Popen[bytes]
    mode: str
    log_path: Path

    def efirma_files(self, rfc: str) -> tuple[Path, Path]:
        ca = self.workdir / "var" / "demo" / "ca"
        return ca / f"{rfc}.cer", ca / f"{rfc}.key"

    def wait_code(self, phone: str, after: int, timeout: float = 10) -> str:
        """The OTP of the first SMS to ``phone`` after the ``after``-th message of the outbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.outbox.messages()[after:]
            for message in messages:
                if message["to"].endswith(phone):
                    codes: list[str] = re.findall(r"(?<!\d)\d{6}(?!\d)", message["text"])
                    assert len(codes) == 1, message
                    return codes[0]
            time.sleep(0.05)
        raise AssertionError(f"no SMS reached {phone}")

    def tokens(self, curp: str, phone: str) -> dict[str, Any]:
        """Sign in by SMS code over HTTP (not through the page), for tests about other screens."""
        with httpx.Client(base_url=self.direct, timeout=10) as http:
            before = len(self.outbox.messages())
            started = http.post("/auth/curp/start", json={"curp": curp})
            assert started.status_code == 200, started.text
            code = self.wait_code(phone, before)
            verified = http.post(
                "/auth/curp/verify", json={"otp_id": started.json()["otp_id"], "code": code}
            )
            assert verified.status_code == 200, verified.text
            body: dict[str, Any] = verified.json()
            return body

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.direct + path, headers=headers, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.proxy.stop()


def _environment(workdir: Path, public_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPETA_")}
    ca = workdir / "var" / "demo" / "ca"
    env.update(
        {
            "CARPETA_DATA_DIR": str(workdir / "var"),
            "CARPETA_PUBLIC_URL": public_url,
            "CARPETA_SMS_SINK": f"file:{workdir / 'sms.jsonl'}",
            "CARPETA_EFIRMA_TRUST_ANCHORS": str(ca / "ca.pem"),
            "CARPETA_EFIRMA_CRL": str(ca / "crl.der"),
            "CARPETA_OTP_PER_CURP_PER_HOUR": "1000",
            "CARPETA_LOG_FORMAT": "text",
            "CARPETA_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start: " + log_path.read_text())


def start_server(workdir: Path) -> PwaServer:
    port = free_port()
    proxy = CountingProxy(port)
    public = f"http://127.0.0.1:{proxy.start()}"
    env = _environment(workdir, public)
    seeded = subprocess.run(
        [sys.executable, "-m", "wallet.cli", "demo", "--no-serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    log_path = workdir / "server.log"
    direct = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "wallet.cli", "serve", "--port", str(port)]
    process = _start(serve, env, log_path)
    _wait_healthy(direct, process, log_path)
    mode = "carpeta serve"
    if httpx.get(direct + "/sw.js", timeout=5).status_code == 404:
        # The app does not mount the PWA yet: serve it with the routes added.
        process.terminate()
        process.wait(timeout=20)
        composed = [sys.executable, "-m", "tests.e2e.pwa_support", "--port", str(port)]
        process = _start(composed, env, log_path)
        _wait_healthy(direct, process, log_path)
        mode = "create_app + pwa_route_handlers (not wired yet)"
    return PwaServer(
        base=public,
        direct=direct,
        workdir=workdir,
        outbox=Outbox(workdir / "sms.jsonl"),
        proxy=proxy,
        process=process,
        mode=mode,
        log_path=log_path,
    )


# ------------------------------------------------------------------------------------------
# Session-wide singletons (several test modules share one server and one browser)
# ------------------------------------------------------------------------------------------

_shared: dict[str, Any] = {}


@pytest.fixture
def pwa_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PwaServer:
    if "server" not in _shared:
        started = start_server(tmp_path_factory.mktemp("pwa"))
        _shared["server"] = started

        def stop() -> None:
            started.stop()
            _shared.pop("server", None)

        request.config.add_cleanup(stop)
    server: PwaServer = _shared["server"]
    return server


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Browser:
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            pytest.skip(f"Chromium not found at {CHROMIUM} (.ci/run installs it)")
        playwright: Playwright = sync_playwright().start()
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _shared["browser"] = launched

        def stop() -> None:
            launched.close()
            playwright.stop()
            _shared.pop("browser", None)

        request.config.add_cleanup(stop)
    browser: Browser = _shared["browser"]
    return browser


@pytest.fixture
def assets() -> AssetTable:
    if "assets" not in _shared:
        _shared["assets"] = build()
    table: AssetTable = _shared["assets"]
    return table


@pytest.fixture
def axe_source(request: pytest.FixtureRequest) -> str:
    """axe-core, fetched once from the npm registry into pytest's (git-ignored) cache."""
    if "axe" not in _shared:
        cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
        directory = cache.mkdir("axe-core") if cache else ROOT / ".pytest_cache" / "d" / "axe-core"
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / f"axe-{AXE_VERSION}.min.js"
        if not script.exists():
            fetched = subprocess.run(
                ["npm", "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(directory)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert fetched.returncode == 0, (
                f"npm could not fetch axe-core@{AXE_VERSION} (needed for the WCAG checks): "
                + fetched.stderr
            )
            with tarfile.open(directory / f"axe-core-{AXE_VERSION}.tgz") as archive:
                member = archive.extractfile("package/axe.min.js")
                assert member is not None
                script.write_bytes(member.read())
        _shared["axe"] = script.read_text()
    source: str = _shared["axe"]
    return source


# ------------------------------------------------------------------------------------------
# A phone: one browser context, console errors recorded, CDP network accounting
# ------------------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Network accounting from CDP ``Network.*`` events of one page."""

    requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def on_response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        self.requests.setdefault(event["requestId"], {}).update(
            url=response["url"],
            status=response["status"],
            from_sw=bool(response.get("fromServiceWorker")),
            from_cache=bool(response.get("fromDiskCache") or response.get("fromPrefetchCache")),
        )

    def on_finished(self, event: dict[str, Any]) -> None:
        self.requests.setdefault(event["requestId"], {})["bytes"] = int(event["encodedDataLength"])

    def total(self, where: Callable[[dict[str, Any]], bool] = lambda r: True) -> int:
        return sum(r.get("bytes", 0) for r in self.requests.values() if "url" in r and where(r))

    def rows(self) -> list[dict[str, Any]]:
        return [r for r in self.requests.values() if "url" in r]


class Phone:
    """A fresh, empty browser profile the size of a cheap Android phone."""

    def __init__(
        self, browser: Browser, server: PwaServer, width: int = 360, height: int = 740
    ) -> None:
        self.server = server
        self.context: BrowserContext = browser.new_context(
            viewport={"width": width, "height": height},
            locale="es-MX",
            timezone_id="America/Mexico_City",
            accept_downloads=True,
            service_workers="allow",
        )
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.cdp: CDPSession = self.context.new_cdp_session(self.page)
        self.transfer = Transfer()
        self.cdp.on("Network.responseReceived", lambda e: self.transfer.on_response(e))
        self.cdp.on("Network.loadingFinished", lambda e: self.transfer.on_finished(e))
        self.cdp.send("Network.enable")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "") if message.location else ""
        text = f"{message.text} [{where}]"
        if any(p.search(text) for p in self.allowed):
            return
        # A 404 from an endpoint still being built is how the app learns to hide a screen.
        if "404" in message.text and any(path in where for path in COMING_SOON):
            return
        self.errors.append(text)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def url(self, path: str = "/") -> str:
        return self.server.base + path

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.url(path))
        return self.page

    def sign_in(self, curp: str, phone: str, assets: AssetTable) -> dict[str, Any]:
        """Put a session into the app through its own ``saveTokens`` (tokens from HTTP)."""
        tokens = self.server.tokens(curp, phone)
        if not self.page.url.startswith(self.server.base):
            self.open("/#/entrar")
            self.page.wait_for_selector("#curp")
        self.page.evaluate(
            "async ([url, tokens]) => (await import(url)).saveTokens(tokens)",
            [assets.url("core.js"), tokens],
        )
        self.page.goto(self.url("/#/"))
        return tokens

    def new_transfer(self) -> Transfer:
        self.transfer = Transfer()
        return self.transfer

    def throttle_2g(self) -> None:
        # 250 kbit/s both ways, 800 ms round trip: SPEC's "emulated 2G".
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 800,
                "downloadThroughput": 250_000 / 8,
                "uploadThroughput": 250_000 / 8,
            },
        )

    def unthrottle(self) -> None:
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

    def wait_for_service_worker(self) -> None:
        self.page.wait_for_function(
            "() => navigator.serviceWorker.controller !== null"
            " && navigator.serviceWorker.controller.state === 'activated'",
            timeout=15000,
        )

    def axe(self, source: str) -> list[dict[str, Any]]:
        """Serious and critical WCAG 2.x A/AA violations on the page as it is now."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            # Through CDP: the page's CSP (script-src 'self') rightly refuses inline scripts.
            self.cdp.send("Runtime.evaluate", {"expression": source})
        found: list[dict[str, Any]] = self.page.evaluate(
            """async () => {
                const result = await axe.run(document, {
                    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                });
                return result.violations
                    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5)}));
            }"""
        )
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def phone(browser: Browser, pwa_server: PwaServer) -> Iterator[Phone]:
    device = Phone(browser, pwa_server)
    try:
        yield device
    finally:
        device.close()
    assert not device.errors, device.errors


# ------------------------------------------------------------------------------------------
# Measurements (recorded, never asserted when they are timings)
# ------------------------------------------------------------------------------------------


BUDGETS = {  # SPEC "Budgets": what bench/results/REPORT.md compares the measurements with
    "first_load_bytes": 30 * 1024,
    "repeat_load_shell_bytes": 0,
    "two_g_seconds": 5.0,
}


def _bench_body(sections: dict[str, Any]) -> dict[str, Any]:
    """The measurements in the format of ``bench/report.py``, so REPORT.md lists them."""
    from bench.registry import Check, Metric
    from bench.report import environment

    metrics: list[Metric] = []
    checks: list[Check] = []
    first = sections.get("first_load")
    if first:
        wire = first["wire_bytes_incl_service_worker_install"]
        metrics += [
            Metric(
                "first load: page bytes (CDP encodedDataLength)", first["cdp_encoded_bytes"], "B"
            ),
            Metric("first load: bytes on the wire, worker install included", wire, "B"),
            Metric("first load: page requests", first["requests"], ""),
        ]
        checks.append(
            Check("PWA first load, all bytes", wire, "<=", BUDGETS["first_load_bytes"], "B")
        )
    repeat = sections.get("repeat_load")
    if repeat:
        shell = repeat["shell_bytes_from_network"]
        metrics += [
            Metric("repeat load: shell bytes from the network", shell, "B"),
            Metric("repeat load: API bytes (delta sync)", repeat["api_bytes"], "B"),
        ]
        checks.append(
            Check(
                "PWA repeat load, shell bytes", shell, "<=", BUDGETS["repeat_load_shell_bytes"], "B"
            )
        )
    two_g = sections.get("two_g")
    if two_g:
        for key, label in (
            ("cold_load_to_signin_s", "2G: cold load → sign-in usable"),
            ("curp_enter_to_code_field_s", "2G: CURP sent → code field"),
            ("code_enter_to_dashboard_s", "2G: code sent → dashboard usable"),
            ("repeat_load_dashboard_shown_s", "2G: repeat load → dashboard shown (saved data)"),
            ("repeat_load_dashboard_synced_s", "2G: repeat load → dashboard synced"),
        ):
            metrics.append(Metric(label, two_g[key], "s"))
        for key, label in (
            ("cold_load_to_signin_s", "2G sign-in usable"),
            ("code_enter_to_dashboard_s", "2G dashboard usable after sign-in"),
            ("repeat_load_dashboard_synced_s", "2G dashboard usable, repeat visit"),
        ):
            checks.append(Check(label, two_g[key], "<=", BUDGETS["two_g_seconds"], "s"))
    for screen, figures in (sections.get("screens") or {}).items():
        metrics.append(Metric(f"screen bytes: {screen}", figures["bytes"], "B"))
    return {
        "scenario": "pwa",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "duration_s": 0,
        "environment": environment(),
        "params": {"chromium": CHROMIUM, "network": "loopback; 2G by CDP (800 ms, 250 kbit/s)"},
        "metrics": [dataclasses.asdict(m) for m in metrics],
        "checks": [{**dataclasses.asdict(c), "ok": c.ok} for c in checks],
        "notes": [
            "Measured by tests/e2e/test_pwa_*.py in Debian's Chromium against a real server; "
            "byte counts are asserted there, timings only recorded.",
        ],
        "sections": sections,
    }


def record(section: str, values: dict[str, Any]) -> None:
    """Print a measurement and merge it into ``bench/results/pwa.json``."""
    print(f"[pwa] {section}: {json.dumps(values, ensure_ascii=False)}")
    sections: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError, AttributeError):
            sections = dict(json.loads(RESULTS.read_text()).get("sections") or {})
    sections[section] = values
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_bench_body(sections), indent=2, ensure_ascii=False) + "\n")
    tmp.replace(RESULTS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------------------------------
# Contract doubles for endpoints still being built (SPEC "Consent", "Ledger")
# ------------------------------------------------------------------------------------------


ACTIVITY_PATH = re.compile(r".*/api/v1/me/activity(\?.*)?$")
CONSENT_PATHS = re.compile(r".*/api/v1/me/(consent-requests|consents)(/.*)?(\?.*)?$")


def _acr(authorization: str | None) -> str:
    token = (authorization or "").removeprefix("Bearer ")
    try:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (IndexError, ValueError):
        return ""
    return str(claims.get("acr", ""))


class ContractDouble:
    """SPEC's citizen consent API, in memory: what the page would get from the real one.

    Replays a POST whose Idempotency-Key it has seen (as the server does), refuses sensitive
    categories below ``substantial`` with the RFC 9470 step-up challenge, and can drop the
    first attempt of an action as a lost connection would.
    """

    def __init__(self) -> None:
        until = "2027-06-30T00:00:00Z"
        self.requests: list[dict[str, Any]] = [
            {
                "id": "req-nss",
                "consent_id": "req-nss",
                "status": "requested",
                "data_consumer": "imss",
                "consumer_name": "Instituto Mexicano del Seguro Social (IMSS)",
                "categories": ["nss_imss"],
                "category_names": ["Número de seguridad social"],
                "purpose": {
                    "code": "alta_beneficiario",
                    "text": "Dar de alta a tu hijo como beneficiario",
                },
                "valid_until": until,
            },
            {
                "id": "req-clinico",
                "consent_id": "req-clinico",
                "status": "requested",
                "data_consumer": "imss",
                "consumer_name": "Instituto Mexicano del Seguro Social (IMSS)",
                "categories": ["expediente_clinico"],
                "category_names": ["Expediente clínico"],
                "purpose": {"code": "incapacidad", "text": "Revisar tu incapacidad por enfermedad"},
                "valid_until": until,
                "sensitive": True,
            },
        ]
        self.consents: list[dict[str, Any]] = [
            {
                "consent_id": "c-sat",
                "status": "active",
                "data_consumer": "sat",
                "consumer_name": "Servicio de Administración Tributaria (SAT)",
                "categories": ["acta_nacimiento"],
                "category_names": ["Acta de nacimiento"],
                "purpose": {"code": "verificacion_identidad", "text": "Verificar tu identidad"},
                "valid_until": until,
                "receipt": "eyJhbGciOiJFZERTQSJ9.eyJjb25zZW50X2lkIjoiYy1zYXQifQ.c2ln",
            },
            {
                "consent_id": "c-sep",
                "status": "revoked",
                "data_consumer": "sep",
                "consumer_name": "Secretaría de Educación Pública (SEP)",
                "categories": ["certificado_estudios"],
                "category_names": ["Certificado de estudios"],
                "purpose": {"code": "inscripcion", "text": "Inscribirte a la universidad"},
                "valid_until": until,
                "receipt": "eyJ.eyJ.c2ln",
            },
        ]
        self.posts: list[dict[str, Any]] = []
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.drop_next: set[str] = set()
        #: Routing answers even when the context is offline; a real network would not.
        self.offline = False

    def _consent(self, consent_id: str) -> dict[str, Any]:
        return next(c for c in self.consents if c["consent_id"] == consent_id)

    def handle(self, route: Route) -> None:
        request = route.request
        path = urlparse(request.url).path
        if self.offline:
            route.abort("internetdisconnected")
            return
        if request.method == "GET":
            if path.endswith("/consent-requests"):  # a plain list, as the server answers
                route.fulfill(json=self.requests)
            else:  # a delta-sync page; this double always sends everything
                page = {
                    "items": self.consents,
                    "deleted": [],
                    "next_cursor": "c",
                    "has_more": False,
                }
                route.fulfill(json=page)
            return
        key = request.headers.get("idempotency-key", "")
        acr = _acr(request.headers.get("authorization"))
        self.posts.append({"path": path, "key": key, "acr": acr, "body": request.post_data_json})
        action = path.rsplit("/", 1)[-1]
        if action in self.drop_next:  # the signal drops while the request is on its way
            self.drop_next.discard(action)
            route.abort("internetdisconnected")
            return
        if key in self.answers:
            status, body = self.answers[key]
            route.fulfill(status=status, json=body, headers={"Idempotent-Replayed": "true"})
            return
        status, body = self._act(path, action, acr, request.post_data_json)
        if status == 401:
            route.fulfill(
                status=401,
                json={
                    "type": "https://carpeta.gob.mx/problems/step-up-required",
                    "title": "Esta acción requiere un nivel de seguridad mayor.",
                    "status": 401,
                },
                headers={
                    "Content-Type": "application/problem+json",
                    "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
                    'error_description="Se requiere nivel substantial", acr_values="substantial"',
                },
            )
            return
        self.answers[key] = (status, body)
        route.fulfill(status=status, json=body)

    def _act(self, path: str, action: str, acr: str, body: Any) -> tuple[int, dict[str, Any]]:
        target = path.split("/")[-2]
        if "/consent-requests/" in path:
            request = next(r for r in self.requests if r["id"] == target)
            if request.get("sensitive") and acr not in ("substantial", "high"):
                return 401, {}
            self.requests.remove(request)
            consent = {
                **request,
                "status": "active" if action == "approve" else "denied",
                "receipt": "eyJ.eyJ.c2ln",
            }
            self.consents.append(consent)
            return 200, consent
        if path.endswith("/api/v1/me/consents"):
            consent = {
                **body,
                "consent_id": f"c-new-{len(self.consents)}",
                "status": "active",
                "data_consumer": body["consumer"],
                "receipt": "eyJ.eyJ.c2ln",
                "purpose": {"code": body["purpose"], "text": "Inscribirte a la universidad"},
            }
            self.consents.append(consent)
            return 201, consent
        consent = self._consent(target)
        consent["status"] = {"pause": "paused", "resume": "active", "revoke": "revoked"}[action]
        return 200, consent


def signed_activity(key_name: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    at = datetime(2026, 11, 20, 17, 4, 5, tzinfo=UTC)
    subject = "ab" * 32
    events = [
        LedgerEvent(
            type="record.published",
            at=at,
            provider="renapo",
            subject=subject,
            categories=("acta_nacimiento",),
        ),
        LedgerEvent(
            type="consent.granted",
            at=at,
            consumer="sat",
            subject=subject,
            categories=("acta_nacimiento",),
            purpose="verificacion_identidad",
            consent_id="c-sat",
        ),
        LedgerEvent(
            type="data.released",
            at=at,
            consumer="sat",
            provider="renapo",
            subject=subject,
            categories=("acta_nacimiento",),
            purpose="verificacion_identidad",
            consent_id="c-sat",
            outcome="released",
        ),
        LedgerEvent(
            type="data.legal_basis",
            at=at,
            consumer="bienestar",
            provider="renapo",
            subject=subject,
            categories=("acta_nacimiento",),
            purpose="programa_social",
            legal_basis="Art. 91 Ley General de Población",
            outcome="released",
        ),
    ]
    others = [f"otro {i}".encode() for i in range(5)]
    leaves = [*others[:2], *(e.to_leaf() for e in events), *others[2:]]
    hashes_ = [leaf_hash(leaf) for leaf in leaves]
    size = len(leaves)

    def node(level: int, index: int) -> bytes:
        return root_from_leaf_hashes(hashes_[index << level : (index + 1) << level])

    secret = Ed25519PrivateKey.generate()
    raw = secret.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    note = sign_checkpoint(
        Checkpoint(key_name, size, root_from_leaf_hashes(hashes_)), key_name, secret
    )
    items = [
        {
            "leaf_index": i,
            "leaf": b64(leaves[i]),
            "tree_size": size,
            "inclusion": [b64(h) for h in inclusion_proof(i, size, node)],
        }
        for i in range(2, 2 + len(events))
    ]
    key = {"origin": key_name, "key_name": key_name, "public_key": b64(raw)}
    page = {
        "items": items,
        "checkpoint": note,
        "tree_size": size,
        "pending": 0,
        "next_before": None,
    }
    return key, note, page


# ------------------------------------------------------------------------------------------
# `python -m tests.e2e.pwa_support --port P`: the app plus the PWA routes, for as long as
# wallet.app does not mount them itself.
# ------------------------------------------------------------------------------------------


def take_screenshots(directory: Path) -> list[Path]:
    """Phone-sized pictures of each screen for docs/pwa.md (``--screenshots DIR``)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    directory.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        server = start_server(Path(tmp))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            device = Phone(browser, server, width=360, height=640)
            page = device.page
            double = ContractDouble()
            page.route(CONSENT_PATHS, double.handle)
            key, note, activity = signed_activity(urlparse(server.base).netloc + "/carpeta-ledger")
            page.route("**/.well-known/carpeta-ledger", lambda r: r.fulfill(json=key))
            page.route("**/ledger/checkpoint", lambda r: r.fulfill(body=note))
            page.route(ACTIVITY_PATH, lambda r: r.fulfill(json=activity))

            def shot(name: str) -> None:
                page.wait_for_timeout(300)
                path = directory / f"{name}.png"
                page.screenshot(path=str(path))
                taken.append(path)

            device.open("/")
            page.wait_for_selector("#curp")
            page.fill("#curp", GUADALUPE[0])
            shot("1-entrar")
            page.click("text=Entrar con e.firma")
            page.wait_for_selector("#cer")
            shot("2-efirma")
            device.sign_in(GUADALUPE[0], GUADALUPE[1], build())
            page.wait_for_selector("text=Acta de nacimiento")
            shot("3-inicio")
            page.click("text=Declaración anual 2025")
            page.wait_for_selector("#message")
            shot("4-tramite")
            page.goto(device.url("/#/permisos"))
            page.wait_for_selector("#c-req-nss")
            shot("5-permisos")
            page.goto(device.url("/#/actividad"))
            page.wait_for_selector("#log-status")
            shot("6-actividad")
            device.wait_for_service_worker()
            page.goto(device.url("/#/"))
            page.wait_for_selector("text=Acta de nacimiento")
            device.context.set_offline(True)
            double.offline = True
            page.reload()
            page.wait_for_selector("#net:not([hidden])")
            shot("7-sin-conexion")
            device.close()
        finally:
            browser.close()
            server.stop()
    return taken


def main() -> None:
    import uvicorn

    from pwa.routes import PRECOMPRESSED_OPT, prepare_assets, pwa_route_handlers
    from wallet.app import create_app
    from wallet.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m tests.e2e.pwa_support")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--port", type=int, help="serve the app with the PWA routes")
    what.add_argument("--screenshots", type=Path, help="write screen pictures into DIR")
    args = parser.parse_args()
    if args.screenshots:
        for path in take_screenshots(args.screenshots):
            print(path, path.stat().st_size)
        return
    app = create_app(Settings.from_env())
    if app.compression_config is not None:
        app.compression_config = dataclasses.replace(
            app.compression_config, exclude_opt_key=PRECOMPRESSED_OPT
        )
    for handler in pwa_route_handlers():
        app.register(handler)
    prepare_assets()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
