"""``carpeta demo``: a living service on SQLite for a newcomer, from an empty directory.

Idempotent: running it again keeps the database, the dev CA and the issued e.firma files,
and only adds what is missing.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from eidentity.clock import SystemClock
from eidentity.devca.ca import DevCa, init_ca
from wallet.app import Services, build_services, create_app
from wallet.demo_data import AGENCIES, seed_agencies, seed_folder
from wallet.settings import Settings

DEMO_PASSWORD = "Demo2026"


@dataclass(frozen=True, slots=True)
class DemoCitizen:
    curp: str
    rfc: str
    name: str
    phone: str
    efirma: bool


CITIZENS = (
    DemoCitizen(
        "LOHG850312MDFPRD09", "LOHG850312QK5", "GUADALUPE LOPEZ HERNANDEZ", "5510000001", True
    ),
    DemoCitizen("RATL781102HJCMRS08", "RATL781102AB3", "LUIS RAMIREZ TORRES", "3310000002", True),
    DemoCitizen("PECJ920721MOCRRN05", "PECJ920721HT1", "JUANA PEREZ CRUZ", "9510000003", False),
)


def _demo_settings(port: int) -> Settings:
    data_dir = Path(os.environ.get("CARPETA_DATA_DIR") or "./var")
    ca_dir = data_dir / "demo" / "ca"
    defaults = {
        "CARPETA_DATA_DIR": str(data_dir),
        "CARPETA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARPETA_SMS_SINK": f"file:{(data_dir / 'sms.jsonl').resolve()}",
        "CARPETA_EFIRMA_TRUST_ANCHORS": str((ca_dir / "ca.pem").resolve()),
        "CARPETA_EFIRMA_CRL": str((ca_dir / "crl.der").resolve()),
        "CARPETA_LOG_FORMAT": "text",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return Settings.from_env()


def _prepare_ca(settings: Settings) -> tuple[DevCa, dict[str, tuple[Path, Path]]]:
    ca_dir = settings.data_dir / "demo" / "ca"
    ca = DevCa.load(ca_dir) if (ca_dir / "ca.cer").exists() else init_ca(ca_dir, key_size=2048)
    files: dict[str, tuple[Path, Path]] = {}
    for citizen in CITIZENS:
        if not citizen.efirma:
            continue
        cer, key = ca.directory / f"{citizen.rfc}.cer", ca.directory / f"{citizen.rfc}.key"
        if not cer.exists():
            issued = ca.issue(citizen.curp, citizen.rfc, citizen.name, DEMO_PASSWORD)
            cer, key = issued.cer_path, issued.key_path
        files[citizen.curp] = (cer, key)
    ca.crl()
    return ca, files


async def _seed(services: Services) -> None:
    async with services.sessions() as session:
        await seed_agencies(services, session, services.settings.data_dir / "demo" / "agencies")
        for citizen in CITIZENS:
            await services.registry.enrol(
                session,
                curp=citizen.curp,
                phone=citizen.phone,
                name=citizen.name.title(),
                now=services.clock.now(),
                via="demo",
            )
        await seed_folder(services, session)
        await session.commit()


def prepare_demo(port: int = 8000) -> tuple[Settings, str]:
    settings = _demo_settings(port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _, files = _prepare_ca(settings)

    async def run() -> None:
        services = await build_services(settings, SystemClock())
        try:
            await _seed(services)
        finally:
            await services.engine.dispose()

    asyncio.run(run())
    return settings, _guide(settings, files)


def _guide(settings: Settings, files: dict[str, tuple[Path, Path]]) -> str:
    url = settings.issuer
    sms = settings.sms_sink.removeprefix("file:")
    lines = [
        "",
        "Carpeta Ciudadana MX: demostración lista",
        f"  App para la ciudadanía: abre {url} en el navegador (o en el teléfono)",
        f"  Servicio:  {url}   (OpenAPI: {url}/schema/openapi.json)",
        f"  Base de datos SQLite: {settings.resolved_database_url.split(':///')[-1]}",
        "",
        "Personas de prueba (CURP · celular):",
    ]
    for citizen in CITIZENS:
        lines.append(f"  {citizen.curp} · {citizen.phone} · {citizen.name.title()}")
    lines += [
        "",
        "Entrar con CURP + código por SMS (nivel «low»):",
        f"  curl -s -X POST {url}/auth/curp/start -H 'content-type: application/json' \\",
        f'       -d \'{{"curp": "{CITIZENS[0].curp}"}}\'',
        f"  Los SMS de la demostración se escriben en: {sms}",
        f"  curl -s -X POST {url}/auth/curp/verify -H 'content-type: application/json' \\",
        '       -d \'{"otp_id": "<otp_id>", "code": "<código de 6 dígitos>"}\'',
        f"  curl -s {url}/api/v1/me -H 'authorization: Bearer <access_token>'",
        "",
        f"Entrar con e.firma (nivel «high»), contraseña de las .key: {DEMO_PASSWORD}",
    ]
    for curp, (cer, key) in files.items():
        lines.append(f"  {curp}: {cer.resolve()}  {key.resolve()}")
    lines += [
        "  Pide un reto (POST /auth/efirma/challenge), firma `to_sign` con la .key",
        "  (RSA PKCS#1 v1.5 + SHA-256) y envíalo a POST /auth/efirma/verify.",
        "  Guía completa: docs/identity.md",
        "",
        "Dependencias (clientes OAuth, llaves privadas JWK de la demostración):",
    ]
    agencies_dir = (settings.data_dir / "demo" / "agencies").resolve()
    for agency in AGENCIES:
        lines.append(f"  {agency.id:10} {agency.name}")
    lines += [
        f"  Llaves: {agencies_dir}/<id>.jwk.json   (regulador: scope ledger:audit)",
        f"  Token:  carpeta agency token --id sat --key {agencies_dir}/sat.jwk.json --url {url}",
        "  Guía de integración: docs/api.md",
        "",
    ]
    return "\n".join(lines)


def serve_demo(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        server_header=False,
    )
