"""What the PWA browser tests share: one seeded server behind a byte-counting proxy, one
Chromium, phone-sized browser contexts, axe-core, agencies acting through their real API, and
a place to record measurements.

The server is the real one: ``python -m tests.e2e.pwa_support --seed PORT`` runs ``carpeta
demo --no-serve`` (agencies, citizens, dev CA, e.firma files) plus ``carpeta citizen enroll``
and ``carpeta dev-ca issue`` for a few more people, so that every consent test has a person of
its own; then ``carpeta serve`` runs on SQLite. Nothing of ours is replaced in the browser:
agencies ask, release and publish through ``/api/v1/agency/*`` with their demo keys (RFC 7523
assertions), the citizen answers in the page, activity comes from the real ledger.

The proxy sits between Chromium and the server and counts every byte each way, so budgets
include what CDP's page events cannot see (the service worker's own downloads), and tests can
prove that a secret never went over the wire.

Browser and server are started once per test session, lazily, and stopped at its end.
Measurements go to the file named by ``CARPETA_PWA_RESULTS`` (``make bench`` names
``bench/results/pwa.json``), by default to a file in the system's temporary directory.
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
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    ConsoleMessage,
    Page,
    Playwright,
)

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

# People are (CURP, phone, RFC of their e.firma or None).
# Demo people (wallet.demo.CITIZENS); the first has procedures, records and an e.firma.
GUADALUPE = ("LOHG850312MDFPRD09", "5510000001", "LOHG850312QK5")
LUIS = ("RATL781102HJCMRS08", "3310000002", "RATL781102AB3")
JUANA = ("PECJ920721MOCRRN05", "9510000003", None)
DEMO_PASSWORD = "Demo2026"

# One person per consent or activity scenario (enrolled at seeding, empty folders), so that
# what one test asks or grants never shows up on another test's screens.
ANA = ("GAMA900101MDFRRN06", "5510000011", None)
BETO = ("BERO880215HJCNDB07", "3310000012", "BERO880215JK4")
CARMEN = ("CAFC950630MNLSRR03", "8110000013", None)
DIEGO = ("DIPD820412HPLZRG05", "2220000014", "DIPD820412AB2")
FERNANDO = ("FETF870707HYNRNL00", "9990000015", None)
NAMES = {
    ANA: "Ana García Martínez",
    BETO: "Roberto Benítez Ochoa",
    CARMEN: "Carmen Castro Fuentes",
    DIEGO: "Diego Díaz Pérez",
    FERNANDO: "Fernando Estrada Torres",
}


def results_path() -> Path:
    """Where measurements go: ``$CARPETA_PWA_RESULTS``, else the system's temp directory."""
    named = os.environ.get("CARPETA_PWA_RESULTS")
    return Path(named) if named else Path(tempfile.gettempdir()) / "carpeta-pwa.json"


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

    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path, headers) of each request clients sent since the last reset: what
        really left the browser, service worker or not."""
        found = []
        pattern = rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n"
        for match in re.finditer(pattern, bytes(self.sent), re.DOTALL):
            headers = {}
            for line in match.group(3).split(b"\r\n"):
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode("latin-1")
            found.append((match.group(1).decode(), match.group(2).decode(), headers))
        return found

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
    log_path: Path
    agencies: dict[str, Agency] = field(default_factory=dict)

    def efirma_files(self, rfc: str) -> tuple[Path, Path]:
        ca = self.workdir / "var" / "demo" / "ca"
        return ca / f"{rfc}.cer", ca / f"{rfc}.key"

    def wait_code(self, phone: str, after: int, timeout: float = 10) -> str:
        """The OTP of the first SMS to ``phone`` after the ``after``-th message of the outbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.outbox.messages()[after:]
            for message in messages:
                if not message["to"].endswith(phone):
                    continue
                # Consent requests also reach the phone by SMS; only a sign-in code has digits.
                codes: list[str] = re.findall(r"(?<!\d)\d{6}(?!\d)", message["text"])
                if codes:
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

    def efirma_tokens(self, rfc: str) -> dict[str, Any]:
        """A session at assurance ``high``, the challenge signed in Python with the dev-CA files."""
        cer, key = self.efirma_files(rfc)
        private = load_der_private_key(key.read_bytes(), DEMO_PASSWORD.encode())
        assert isinstance(private, rsa.RSAPrivateKey)
        with httpx.Client(base_url=self.direct, timeout=10) as http:
            challenge = http.post("/auth/efirma/challenge").json()
            signature = private.sign(
                challenge["to_sign"].encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            answer = http.post(
                "/auth/efirma/verify",
                json={
                    "challenge_id": challenge["challenge_id"],
                    "certificate": b64(cer.read_bytes()),
                    "signature": b64(signature),
                },
            )
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.direct + path, headers=headers, timeout=10)

    def post(self, path: str, token: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        return httpx.post(self.direct + path, json=body, headers=headers, timeout=10)

    def consent(self, token: str, consent_id: str) -> dict[str, Any]:
        """The citizen's own view of one consent (``GET /api/v1/me/consents``)."""
        answer = self.get("/api/v1/me/consents", token)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = next(
            c for c in answer.json()["items"] if c["consent_id"] == consent_id
        )
        return found

    def agency(self, agency_id: str) -> Agency:
        if agency_id not in self.agencies:
            self.agencies[agency_id] = Agency(self, agency_id)
        return self.agencies[agency_id]

    def checkpoint_size(self) -> int:
        note = self.get("/ledger/checkpoint")
        assert note.status_code == 200, note.text
        return int(note.text.split("\n")[1])

    def wait_ledger(self, token: str, timeout: float = 15) -> dict[str, Any]:
        """Wait for the sequencer: every event about this citizen is in a signed checkpoint
        (``pending`` is 0 and ``/ledger/checkpoint`` covers the page's tree size)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get("/api/v1/me/activity?limit=1", token)
            if answer.status_code == 200:
                page: dict[str, Any] = answer.json()
                if page["pending"] == 0 and self.checkpoint_size() >= page["tree_size"]:
                    return page
            assert time.monotonic() < deadline, f"ledger did not integrate: {answer.text}"
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.proxy.stop()


class Agency:
    """An agency acting through its real API: a token from ``/oauth/token`` by an RFC 7523
    assertion signed with its demo key (``var/demo/agencies/<id>.jwk.json``)."""

    def __init__(self, server: PwaServer, agency_id: str) -> None:
        self.server = server
        self.id = agency_id
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        if time.monotonic() < self._expires:
            return self._token
        jwk = json.loads(
            (self.server.workdir / "var" / "demo" / "agencies" / f"{self.id}.jwk.json").read_text()
        )
        key = jwt.PyJWK(jwk)
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self.id,
                "sub": self.id,
                "aud": self.server.base + "/oauth/token",
                "iat": now,
                "exp": now + 60,
                "jti": uuid.uuid4().hex,
            },
            key.key,
            algorithm=key.algorithm_name,
            headers={"kid": jwk["kid"]},
        )
        answer = httpx.post(
            self.server.direct + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + int(body["expires_in"]) - 30
        return self._token

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        if method != "GET":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return httpx.request(
            method, self.server.direct + path, json=body, headers=headers, timeout=10
        )

    def ask(
        self,
        person: tuple[str, str, str | None],
        categories: list[str],
        purpose: str,
        purpose_text: str,
        days: int = 30,
        per_day: int | None = None,
    ) -> str:
        """``POST /api/v1/agency/consent-requests``: the id of the new request."""
        body: dict[str, Any] = {
            "curp": person[0],
            "categories": categories,
            "purpose": purpose,
            "purpose_text": purpose_text,
            "duration_days": days,
        }
        if per_day:
            body["frequency"] = {"unit": "day", "value": per_day}
        answer = self.call("POST", "/api/v1/agency/consent-requests", body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def request_status(self, request_id: str) -> str:
        answer = self.call("GET", f"/api/v1/agency/consent-requests/{request_id}")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    def publish(
        self, person: tuple[str, str, str | None], category: str, title: str, data: dict[str, Any]
    ) -> None:
        """``PUT /api/v1/agency/records/{external id}``: a record this agency holds."""
        external = f"{category}-{person[0]}"
        body = {"curp": person[0], "category": category, "title": title, "data": data}
        answer = self.call("PUT", f"/api/v1/agency/records/{external}", body)
        assert answer.status_code in (200, 201), answer.text

    def release(
        self,
        person: tuple[str, str, str | None],
        category: str,
        purpose: str,
        consent_id: str | None = None,
    ) -> httpx.Response:
        """``POST /api/v1/agency/data-requests``: 200 with records, or 403 with a reason."""
        body: dict[str, Any] = {"curp": person[0], "category": category, "purpose": purpose}
        if consent_id:
            body["consent_id"] = consent_id
        return self.call("POST", "/api/v1/agency/data-requests", body)


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


def seed(port: int) -> None:
    """``carpeta demo --no-serve``, then ``carpeta citizen enroll`` and ``carpeta dev-ca issue``
    for the extra people, in one process (each command as the operator would type it)."""
    from wallet.cli import main as carpeta

    carpeta(["demo", "--no-serve", "--port", str(port)], standalone_mode=False)
    ca = Path(os.environ["CARPETA_DATA_DIR"]) / "demo" / "ca"
    for person, name in NAMES.items():
        curp, phone, rfc = person
        carpeta(
            ["citizen", "enroll", "--curp", curp, "--phone", phone, "--name", name],
            standalone_mode=False,
        )
        if rfc:
            issue = ["dev-ca", "issue", str(ca), "--curp", curp, "--rfc", rfc]
            issue += ["--name", name.upper(), "--password", DEMO_PASSWORD]
            carpeta(issue, standalone_mode=False)


def start_server(workdir: Path) -> PwaServer:
    port = free_port()
    proxy = CountingProxy(port)
    public = f"http://127.0.0.1:{proxy.start()}"
    env = _environment(workdir, public)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.e2e.pwa_support", "--seed", str(port)],
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
    return PwaServer(
        base=public,
        direct=direct,
        workdir=workdir,
        outbox=Outbox(workdir / "sms.jsonl"),
        proxy=proxy,
        process=process,
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
    """A fresh, empty browser profile the size of a cheap Android phone.

    ``worker``: whether the app's service worker may run. Playwright neither sees nor routes
    the requests a service worker intercepts, so tests that watch or alter the page's requests
    use a phone without it; tests about the worker (install, offline, repeat loads) use one
    with it, and watch requests at the proxy.
    """

    def __init__(
        self,
        browser: Browser,
        server: PwaServer,
        width: int = 360,
        height: int = 740,
        *,
        worker: bool = False,
    ) -> None:
        self.server = server
        self.context: BrowserContext = browser.new_context(
            viewport={"width": width, "height": height},
            locale="es-MX",
            timezone_id="America/Mexico_City",
            accept_downloads=True,
            service_workers="allow" if worker else "block",
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

    def efirma(self, rfc: str, password: str = DEMO_PASSWORD) -> None:
        """Fill the e.firma form on screen (sign-in or step-up) and press Enter."""
        cer, key = self.server.efirma_files(rfc)
        self.page.set_input_files("#cer", str(cer))
        self.page.set_input_files("#key", str(key))
        self.page.fill("#pass", password)
        self.page.press("#pass", "Enter")

    def new_transfer(self) -> Transfer:
        self.transfer = Transfer()
        return self.transfer

    def set_offline(self, offline: bool) -> None:
        """No signal: Playwright's context switch (``navigator.onLine``, the worker's own
        fetches) misses page requests that pass through the service worker; the page's own CDP
        network conditions catch those. A page reloaded while offline was seen to get its very
        first requests out before they applied, so tests that need the network to stay away
        do not reload while offline."""
        self.context.set_offline(offline)
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

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


def _phone(device: Phone) -> Iterator[Phone]:
    try:
        yield device
    finally:
        device.close()
    assert not device.errors, device.errors


@pytest.fixture
def phone(browser: Browser, pwa_server: PwaServer) -> Iterator[Phone]:
    """A phone whose app runs without its service worker (see :class:`Phone`)."""
    yield from _phone(Phone(browser, pwa_server))


@pytest.fixture
def phone_with_worker(browser: Browser, pwa_server: PwaServer) -> Iterator[Phone]:
    """A phone whose app installs and uses its service worker."""
    yield from _phone(Phone(browser, pwa_server, worker=True))


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
            ("activity_verified_s", "2G: activity → events and checkpoint verified"),
        ):
            if key in two_g:
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


def record(section: str, values: dict[str, Any], *, merge: bool = False) -> None:
    """Print a measurement and write it into the results file (see :func:`results_path`):
    the section is replaced, or with ``merge`` updated key by key."""
    print(f"[pwa] {section}: {json.dumps(values, ensure_ascii=False)}")
    results = results_path()
    sections: dict[str, Any] = {}
    if results.exists():
        with contextlib.suppress(ValueError, AttributeError):
            sections = dict(json.loads(results.read_text()).get("sections") or {})
    sections[section] = {**sections.get(section, {}), **values} if merge else values
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_name(results.name + ".tmp")
    tmp.write_text(json.dumps(_bench_body(sections), indent=2, ensure_ascii=False) + "\n")
    tmp.replace(results)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------------------------------
# Pictures for docs/pwa.md: `python -m tests.e2e.pwa_support --screenshots docs/pwa`
# ------------------------------------------------------------------------------------------


def story(server: PwaServer) -> str:
    """Guadalupe's consents and their traces, made the real way (agencies' API and hers);
    returns her access token."""
    imss, sat, sep = server.agency("imss"), server.agency("sat"), server.agency("sep")
    token = str(server.tokens(GUADALUPE[0], GUADALUPE[1])["access_token"])
    asked = imss.ask(
        GUADALUPE, ["acta_nacimiento"], "alta_beneficiario", "Dar de alta a tu hijo", per_day=2
    )
    assert server.post(f"/api/v1/me/consent-requests/{asked}/approve", token).status_code == 200
    assert imss.release(GUADALUPE, "acta_nacimiento", "alta_beneficiario").status_code == 200
    assert sat.release(GUADALUPE, "acta_nacimiento", "verificacion_identidad").status_code == 200
    until = (datetime.now(UTC) + timedelta(days=180)).isoformat()
    grant = {
        "consumer": "sep",
        "categories": ["titulo_profesional"],
        "purpose": "emision_titulo",
        "valid_until": until,
    }
    granted = server.post("/api/v1/me/consents", token, grant)
    assert granted.status_code == 201, granted.text
    revoke = f"/api/v1/me/consents/{granted.json()['consent_id']}/revoke"
    assert server.post(revoke, token).status_code == 200
    assert sep.release(GUADALUPE, "titulo_profesional", "emision_titulo").status_code == 403
    imss.ask(
        GUADALUPE, ["nss_imss"], "alta_beneficiario", "Dar de alta a tu hijo como beneficiario"
    )
    imss.ask(GUADALUPE, ["expediente_clinico"], "incapacidad", "Revisar tu incapacidad")
    server.wait_ledger(token)
    return token


def take_screenshots(directory: Path) -> list[Path]:
    """Phone-sized pictures of each screen, against a server of their own."""
    from playwright.sync_api import sync_playwright

    directory.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        server = start_server(Path(tmp))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            token = story(server)
            device = Phone(browser, server, width=360, height=640, worker=True)
            page = device.page

            def shot(name: str) -> None:
                page.wait_for_load_state("networkidle")
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
            page.wait_for_selector("text=Revisar tu incapacidad")
            shot("5-permisos")
            page.goto(device.url("/#/actividad"))
            page.wait_for_selector("#log-chain")
            # A new event, then back: the phone checks the log only grew since its last look.
            server.agency("sat").release(GUADALUPE, "acta_nacimiento", "verificacion_identidad")
            server.wait_ledger(token)
            page.goto(device.url("/#/"))
            page.goto(device.url("/#/actividad"))
            page.wait_for_selector("#log-chain[data-chain=grew]")
            shot("6-actividad")
            page.goto(device.url("/#/permisos"))
            page.click("button:has-text('Dar un permiso nuevo')")
            page.select_option("#g-agency", "imss")
            page.select_option("#g-category", "expediente_clinico")
            page.select_option("#g-purpose", "incapacidad")
            page.eval_on_selector("#new-grant", "(slot) => slot.scrollIntoView()")
            shot("8-permiso-nuevo")
            page.click("#new-grant button:has-text('Cancelar')")
            device.wait_for_service_worker()
            page.goto(device.url("/#/"))
            page.wait_for_selector("text=Acta de nacimiento")
            device.set_offline(True)
            page.reload()
            page.wait_for_selector("#net:not([hidden])")
            shot("7-sin-conexion")
            device.close()
        finally:
            browser.close()
            server.stop()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.pwa_support")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, metavar="PORT", help="seed the data directory")
    what.add_argument("--screenshots", type=Path, help="write screen pictures into DIR")
    args = parser.parse_args()
    if args.seed:
        seed(args.seed)
        return
    for path in take_screenshots(args.screenshots):
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
