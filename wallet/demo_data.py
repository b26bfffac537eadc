"""The demo's living folder: five agencies with keys, and plausible procedures and records.

Everything goes through the same code agencies use (registry, publisher), so the demo shows
the real behaviour: a second run republishes the same bodies and changes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.agencies.registry import AgencyRegistry, LegalBasis
from wallet.folder.schemas import ProcedureIn, RecordIn, Step
from wallet.services import Services


@dataclass(frozen=True, slots=True)
class DemoAgency:
    id: str
    name: str
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_bases: tuple[LegalBasis, ...] = ()


AGENCIES = (
    DemoAgency(
        "renapo",
        "Registro Nacional de Población (RENAPO)",
        ("acta_nacimiento", "curp_certificada"),
        ("verificacion_identidad",),
    ),
    DemoAgency(
        "sat",
        "Servicio de Administración Tributaria (SAT)",
        ("constancia_situacion_fiscal", "acta_nacimiento"),
        ("declaracion_anual", "verificacion_identidad"),
        (
            LegalBasis(
                "acta_nacimiento",
                "verificacion_identidad",
                "Art. 27 Código Fiscal de la Federación",
            ),
        ),
    ),
    DemoAgency(
        "imss",
        "Instituto Mexicano del Seguro Social (IMSS)",
        ("nss_imss", "semanas_cotizadas", "expediente_clinico", "acta_nacimiento"),
        ("alta_beneficiario", "incapacidad", "pension"),
    ),
    DemoAgency(
        "sep",
        "Secretaría de Educación Pública (SEP)",
        ("certificado_estudios", "titulo_profesional", "acta_nacimiento"),
        ("emision_titulo", "inscripcion"),
    ),
    DemoAgency(
        "bienestar",
        "Secretaría de Bienestar",
        ("padron_bienestar", "acta_nacimiento", "comprobante_domicilio", "discapacidad"),
        ("programa_social",),
        (LegalBasis("acta_nacimiento", "programa_social", "Art. 91 Ley General de Población"),),
    ),
)


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# (agency, external id, CURP, body) — realistic content, es-MX.
PROCEDURES: tuple[tuple[str, str, str, ProcedureIn], ...] = (
    (
        "sat",
        "DA2025-LOHG",
        "LOHG850312MDFPRD09",
        ProcedureIn(
            curp="LOHG850312MDFPRD09",
            title="Declaración anual 2025: devolución de saldo a favor",
            status="action_required",
            steps=[
                Step("Declaración presentada", True, date(2026, 4, 10)),
                Step("Validación de la cuenta CLABE"),
                Step("Depósito de la devolución"),
            ],
            next_action="Confirma tu cuenta CLABE en el portal del SAT para recibir $4,320.",
            due_date=date(2026, 12, 15),
            contact="MarcaSAT 55 627 22 728",
        ),
    ),
    (
        "imss",
        "BEN-88213",
        "LOHG850312MDFPRD09",
        ProcedureIn(
            curp="LOHG850312MDFPRD09",
            title="Alta de beneficiario (hijo) en el IMSS",
            status="in_review",
            steps=[
                Step("Solicitud recibida", True, date(2026, 11, 20)),
                Step("Revisión de documentos"),
                Step("Asignación de clínica"),
            ],
            next_action=None,
            due_date=None,
            contact="UMF 28 Gabriel Mancera",
        ),
    ),
    (
        "sep",
        "TIT-2019-5531",
        "LOHG850312MDFPRD09",
        ProcedureIn(
            curp="LOHG850312MDFPRD09",
            title="Emisión de título electrónico",
            status="resolved",
            steps=[
                Step("Solicitud", True, date(2025, 8, 1)),
                Step("Firma electrónica", True, date(2025, 9, 3)),
            ],
            contact="Dirección General de Profesiones",
        ),
    ),
    (
        "imss",
        "INC-55120",
        "RATL781102HJCMRS08",
        ProcedureIn(
            curp="RATL781102HJCMRS08",
            title="Incapacidad por enfermedad general",
            status="open",
            steps=[
                Step("Certificado de incapacidad emitido", True, date(2026, 11, 24)),
                Step("Pago del subsidio"),
            ],
            next_action=None,
            contact="Subdelegación Guadalajara Centro",
        ),
    ),
    (
        "bienestar",
        "PB-ACT-7781",
        "PECJ920721MOCRRN05",
        ProcedureIn(
            curp="PECJ920721MOCRRN05",
            title="Actualización de datos del padrón de Bienestar",
            status="action_required",
            next_action="Acude a tu módulo de Bienestar con tu INE y comprobante de domicilio.",
            due_date=date(2026, 12, 31),
            contact="Módulo Oaxaca de Juárez, 800 639 42 64",
        ),
    ),
)

RECORDS: tuple[tuple[str, str, str, RecordIn], ...] = (
    (
        "renapo",
        "ACTA-09-1985-00412",
        "LOHG850312MDFPRD09",
        RecordIn(
            curp="LOHG850312MDFPRD09",
            category="acta_nacimiento",
            title="Acta de nacimiento",
            data={
                "nombre": "Guadalupe López Hernández",
                "fecha_nacimiento": "1985-03-12",
                "lugar_nacimiento": "Ciudad de México",
                "entidad_registro": "Ciudad de México",
                "numero_acta": "00412",
                "anio_registro": 1985,
            },
            issued_at=_at("1985-04-02"),
        ),
    ),
    (
        "sat",
        "CSF-LOHG850312QK5",
        "LOHG850312MDFPRD09",
        RecordIn(
            curp="LOHG850312MDFPRD09",
            category="constancia_situacion_fiscal",
            title="Constancia de situación fiscal",
            data={
                "rfc": "LOHG850312QK5",
                "regimen": "Sueldos y salarios e ingresos asimilados",
                "codigo_postal": "03100",
                "situacion": "Activo",
            },
            issued_at=_at("2026-11-02"),
        ),
    ),
    (
        "imss",
        "NSS-LOHG",
        "LOHG850312MDFPRD09",
        RecordIn(
            curp="LOHG850312MDFPRD09",
            category="nss_imss",
            title="Número de seguridad social",
            data={"nss": "12048512345", "clinica": "UMF 28", "vigencia": "vigente"},
        ),
    ),
    (
        "sep",
        "CED-7654321",
        "LOHG850312MDFPRD09",
        RecordIn(
            curp="LOHG850312MDFPRD09",
            category="titulo_profesional",
            title="Título de Licenciatura en Contaduría",
            data={
                "nivel": "Licenciatura",
                "institucion": "Universidad Nacional Autónoma de México",
                "cedula": "7654321",
            },
            issued_at=_at("2025-09-03"),
        ),
    ),
    (
        "renapo",
        "ACTA-14-1978-01877",
        "RATL781102HJCMRS08",
        RecordIn(
            curp="RATL781102HJCMRS08",
            category="acta_nacimiento",
            title="Acta de nacimiento",
            data={
                "nombre": "Luis Ramírez Torres",
                "fecha_nacimiento": "1978-11-02",
                "lugar_nacimiento": "Guadalajara, Jalisco",
                "numero_acta": "01877",
            },
            issued_at=_at("1978-12-01"),
        ),
    ),
    (
        "imss",
        "SEM-RATL",
        "RATL781102HJCMRS08",
        RecordIn(
            curp="RATL781102HJCMRS08",
            category="semanas_cotizadas",
            title="Semanas cotizadas",
            data={
                "semanas": 1184,
                "ultimo_patron": "Aceros del Norte SA de CV",
                "corte": "2026-10-31",
            },
        ),
    ),
    (
        "bienestar",
        "PADRON-PECJ",
        "PECJ920721MOCRRN05",
        RecordIn(
            curp="PECJ920721MOCRRN05",
            category="padron_bienestar",
            title="Pensión para el Bienestar de las Personas con Discapacidad",
            data={
                "programa": "Pensión para el Bienestar de las Personas con Discapacidad",
                "monto_bimestral": 3200,
                "estatus": "activo",
                "ultimo_pago": "2026-11-05",
            },
        ),
    ),
    (
        "renapo",
        "ACTA-20-1992-00333",
        "PECJ920721MOCRRN05",
        RecordIn(
            curp="PECJ920721MOCRRN05",
            category="acta_nacimiento",
            title="Acta de nacimiento",
            data={
                "nombre": "Juana Pérez Cruz",
                "fecha_nacimiento": "1992-07-21",
                "lugar_nacimiento": "Oaxaca de Juárez, Oaxaca",
                "numero_acta": "00333",
            },
            issued_at=_at("1992-08-10"),
        ),
    ),
)


def _agency_key(directory: Path, agency_id: str) -> dict[str, Any]:
    """The agency's private JWK (0600): what the agency itself would keep."""
    path = directory / f"{agency_id}.jwk.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    key = Ed25519PrivateKey.generate()
    jwk = {**OKPAlgorithm.to_jwk(key, as_dict=True), "kid": f"{agency_id}-1", "alg": "EdDSA"}
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(jwk, handle)
    return jwk


def public_part(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "d"}


async def seed_agencies(services: Services, session: AsyncSession, keys_dir: Path) -> None:
    registry = AgencyRegistry()
    for agency in AGENCIES:
        jwk = _agency_key(keys_dir, agency.id)
        await registry.add(
            session,
            agency_id=agency.id,
            name=agency.name,
            jwks={"keys": [public_part(jwk)]},
            categories=agency.categories,
            purposes=agency.purposes,
            legal_bases=agency.legal_bases,
            now=services.clock.now(),
        )
    await registry.add(
        session,
        agency_id="regulador",
        name="Secretaría Anticorrupción y Buen Gobierno (auditoría)",
        jwks={"keys": [public_part(_agency_key(keys_dir, "regulador"))]},
        categories=(),
        purposes=(),
        scopes=("ledger:audit",),
        now=services.clock.now(),
    )
    await session.flush()


async def seed_folder(services: Services, session: AsyncSession) -> None:
    now = services.clock.now()
    for agency_id, external_id, _, procedure in PROCEDURES:
        await services.publisher.upsert_procedure(session, agency_id, external_id, procedure, now)
    for agency_id, external_id, _, record in RECORDS:
        await services.publisher.upsert_record(session, agency_id, external_id, record, now)
