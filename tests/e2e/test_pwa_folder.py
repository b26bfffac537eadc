"""The citizen's folder on a phone: the dashboard (what needs action first), a procedure and a
message to its agency (also sent from the offline queue), a record, the export, signing out,
and accessibility (axe-core, 320 px, 48 px targets) on every screen."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Request

from pwa.assets import AssetTable
from tests.e2e.pwa_support import (
    GUADALUPE,
    JUANA,
    LUIS,
    Phone,
    PwaServer,
    assets,
    axe_source,
    browser,
    phone,
    pwa_server,
)

pytestmark = pytest.mark.e2e
__all__ = ["assets", "axe_source", "browser", "phone", "pwa_server"]  # fixtures used below


def _procedure_id(server: PwaServer, token: str, title: str) -> str:
    items = server.get("/api/v1/me/procedures", token).json()["items"]
    return str(next(p["id"] for p in items if p["title"].startswith(title)))


def test_dashboard_puts_what_needs_action_first(phone: Phone, assets: AssetTable) -> None:
    phone.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
    page = phone.page
    page.wait_for_selector("text=Acta de nacimiento")
    page.wait_for_selector("h1:has-text('Hola, Guadalupe')")
    sections = page.eval_on_selector_all("main section h2", "(hs) => hs.map((h) => h.textContent)")
    assert sections[:3] == ["Necesita tu atención", "Tus trámites", "Tus documentos"]
    attention = page.inner_text("section[aria-labelledby=s-att]")
    assert "Declaración anual 2025" in attention
    assert "Confirma tu cuenta CLABE" in attention
    assert "Fecha límite: 15 de diciembre de 2026" in attention
    procedures = page.inner_text("section[aria-labelledby=s-proc]")
    assert "Alta de beneficiario (hijo) en el IMSS" in procedures and "En revisión" in procedures
    assert "Trámites terminados (1)" in procedures  # the SEP title, folded away
    agencies = page.eval_on_selector_all(
        "section[aria-labelledby=s-rec] h3", "(hs) => hs.map((h) => h.textContent)"
    )
    assert len(agencies) == 4 and any("RENAPO" in a for a in agencies)


def test_nothing_pending_is_said_plainly(phone: Phone, assets: AssetTable) -> None:
    phone.sign_in(LUIS[0], LUIS[1], assets)
    page = phone.page
    page.wait_for_selector("text=Incapacidad por enfermedad general")
    assert page.is_visible("text=Nada pendiente por ahora.")


def test_procedure_detail_and_writing_to_the_agency(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    tokens = phone.sign_in(JUANA[0], JUANA[1], assets)
    page = phone.page
    page.click("text=Actualización de datos del padrón de Bienestar")
    page.wait_for_selector("h1:has-text('Actualización de datos del padrón')")
    assert page.is_visible("text=Acude a tu módulo de Bienestar")
    assert page.is_visible("text=Todavía no hay mensajes.")

    posted: list[Request] = []
    page.on("request", lambda r: posted.append(r) if r.method == "POST" else None)
    page.click("label:has-text('Escribe a')")
    page.keyboard.type("¿Puedo llevar mi comprobante de domicilio en copia?")
    page.click("button:has-text('Enviar mensaje')")
    page.wait_for_selector(".thread li.mine:has-text('¿Puedo llevar mi comprobante')")
    assert page.is_visible("text=Mensaje enviado.")
    assert posted[0].headers.get("idempotency-key")

    procedure = _procedure_id(pwa_server, tokens["access_token"], "Actualización de datos")
    detail = pwa_server.get(f"/api/v1/me/procedures/{procedure}", tokens["access_token"]).json()
    assert [m["body"] for m in detail["messages"]] == [
        "¿Puedo llevar mi comprobante de domicilio en copia?"
    ]


def test_a_message_written_offline_waits_and_is_sent_once(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    tokens = phone.sign_in(LUIS[0], LUIS[1], assets)
    page = phone.page
    page.wait_for_selector("text=Incapacidad por enfermedad general")
    page.click("text=Incapacidad por enfermedad general")
    page.wait_for_selector("#message")
    phone.allow(r"ERR_INTERNET_DISCONNECTED|Failed to fetch")
    phone.set_offline(True)
    page.fill("#message", "Ya entregué el certificado en la subdelegación.")
    page.click("button:has-text('Enviar mensaje')")
    page.wait_for_selector("text=Sin señal: tu mensaje se enviará cuando tengas conexión.")
    page.wait_for_selector(".thread li.pending")
    queued = json.loads(page.evaluate("() => localStorage.getItem('cc.queue')"))
    assert len(queued) == 1 and queued[0]["key"]

    # The answer to the first try can be lost on the way back: sending twice with the same
    # Idempotency-Key must still give one message. Replayed by hand below, after the phone's.
    page.goto(phone.url("/#/"))
    page.wait_for_selector("text=Pendiente de enviar: mensaje a IMSS")
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.method == "POST" else None)
    phone.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("text=Hecho: mensaje a IMSS.")
    assert page.evaluate("() => localStorage.getItem('cc.queue')") == "[]"
    assert sent and sent[0].headers["idempotency-key"] == queued[0]["key"]
    procedure = _procedure_id(pwa_server, tokens["access_token"], "Incapacidad")
    again = httpx.post(
        f"{pwa_server.direct}/api/v1/me/procedures/{procedure}/messages",
        json=queued[0]["body"],
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "Idempotency-Key": queued[0]["key"],
        },
    )
    assert again.status_code in (200, 201)
    assert again.headers["idempotent-replayed"] == "true"
    detail = pwa_server.get(f"/api/v1/me/procedures/{procedure}", tokens["access_token"]).json()
    bodies = [m["body"] for m in detail["messages"]]
    assert bodies.count("Ya entregué el certificado en la subdelegación.") == 1


def test_record_detail_shows_its_content(phone: Phone, assets: AssetTable) -> None:
    phone.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
    page = phone.page
    page.click("text=Acta de nacimiento")
    page.wait_for_selector("dd:has-text('Guadalupe López Hernández')")
    facts = page.inner_text("main")
    assert "De: Registro Nacional de Población (RENAPO)" in facts
    assert "fecha nacimiento" in facts and "1985-03-12" in facts
    assert "2 de abril de 1985" in facts
    page.click("text=Huella digital (SHA-256)")
    assert len((page.text_content("main .mono") or "").strip()) >= 64


def test_export_downloads_everything_as_json(phone: Phone, assets: AssetTable) -> None:
    phone.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
    page = phone.page
    page.click("nav >> text=Mis datos")
    page.wait_for_selector("text=LOHG850312MDFPRD09")
    page.wait_for_load_state("networkidle")
    with page.expect_download() as info:
        page.click("button:has-text('Descargar mis datos')")
    download = info.value
    assert download.suggested_filename.startswith(
        "carpeta-"
    ) and download.suggested_filename.endswith(".json")
    path = download.path()
    document: dict[str, Any] = json.loads(path.read_text())
    assert document["person"]["curp"] == GUADALUPE[0]
    assert len(document["records"]) == 4 and len(document["procedures"]) == 3


def test_signing_out_erases_the_phone(phone: Phone, assets: AssetTable) -> None:
    phone.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
    page = phone.page
    page.wait_for_selector("text=Acta de nacimiento")
    page.click("nav >> text=Mis datos")
    page.click("button:has-text('Salir')")
    page.wait_for_selector("#curp")
    keys = page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('cc.'))")
    assert keys == []
    page.goto(phone.url("/#/dato/x"))
    page.wait_for_selector("#curp")


SCREENS = [
    "signin",
    "code",
    "efirma",
    "dashboard",
    "procedure",
    "record",
    "me",
    "consents",
    "new-grant",
    "activity",
]


def test_every_screen_passes_axe_at_320_px(
    browser: Any, pwa_server: PwaServer, assets: AssetTable, axe_source: str
) -> None:
    device = Phone(browser, pwa_server, width=320, height=640)
    page = device.page
    found: dict[str, Any] = {}

    def check(name: str) -> None:
        page.wait_for_timeout(150)
        found[name] = device.axe(axe_source)
        # No sideways scrolling at 320 px.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 320, name
        # Every control is at least 48 px tall (WCAG target size, as SPEC asks).
        small = page.evaluate(
            """() => [...document.querySelectorAll(
                      'main button, main input, main select, main textarea, nav a, main a.go,'
                      + 'main a.item, main summary')]
                .filter((el) => el.offsetParent !== null)
                .filter((el) => el.getBoundingClientRect().height < 47.5)
                .map((el) => el.outerHTML.slice(0, 80))"""
        )
        assert small == [], (name, small)

    try:
        device.open("/")
        page.wait_for_selector("#curp")
        check("signin")
        page.fill("#curp", GUADALUPE[0])
        page.press("#curp", "Enter")
        page.wait_for_selector("#code")
        check("code")
        page.click("text=Entrar con e.firma")
        page.wait_for_selector("#cer")
        check("efirma")
        device.sign_in(GUADALUPE[0], GUADALUPE[1], assets)
        page.wait_for_selector("text=Acta de nacimiento")
        check("dashboard")
        page.click("text=Declaración anual 2025")
        page.wait_for_selector("#message")
        check("procedure")
        page.goto(device.url("/#/"))
        page.click("a.item:has-text('Acta de nacimiento')")
        page.wait_for_selector("dd:has-text('Guadalupe')")
        check("record")
        page.click("nav >> text=Mis datos")
        page.wait_for_selector("text=LOHG850312MDFPRD09")
        check("me")
        page.click("nav >> text=Permisos")
        page.wait_for_selector("section[aria-labelledby=s-live]")
        check("consents")
        page.click("button:has-text('Dar un permiso nuevo')")
        page.select_option("#g-agency", "imss")
        page.select_option("#g-category", "expediente_clinico")
        page.wait_for_selector("#new-grant .box.warn")
        check("new-grant")
        page.click("nav >> text=Actividad")
        page.wait_for_selector("#log-chain")
        check("activity")
    finally:
        device.close()
    assert set(found) == set(SCREENS)
    assert {name: v for name, v in found.items() if v} == {}
    assert not device.errors, device.errors
