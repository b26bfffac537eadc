"""Consent on the phone, against the real server and nothing else: agencies ask through
``/api/v1/agency/consent-requests`` with their own keys, the citizen answers in Chromium,
and the agencies then get the data, or are refused it, through
``POST /api/v1/agency/data-requests``. Answering, pausing, revoking, granting again, granting
from scratch with the public directory, step-up to e.firma for sensitive data, and actions
whose answer is lost or that are taken without signal (queued, then replayed with the same
Idempotency-Key). Each scenario has a person of its own (see ``pwa_support``)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Locator, Page, Request, Response, Route

from pwa.assets import AssetTable
from tests.e2e.pwa_support import (
    ANA,
    BETO,
    CARMEN,
    DIEGO,
    Phone,
    PwaServer,
    assets,
    axe_source,
    browser,
    phone,
    phone_with_worker,
    pwa_server,
)

pytestmark = pytest.mark.e2e
__all__ = ["assets", "axe_source", "browser", "phone", "phone_with_worker", "pwa_server"]

WHY = "Dar de alta a tu hijo como beneficiario"


def _card(page: Page, consent_id: str) -> Locator:
    return page.locator(f"[id='c-{consent_id}']")


def _live(page: Page, consent_id: str) -> Locator:
    return page.locator(f"section[aria-labelledby=s-live] [id='c-{consent_id}']")


def _acr(request: Request) -> str:
    token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return str(claims["acr"])


@dataclass
class Sent:
    path: str
    key: str
    acr: str
    body: Any
    status: int | None = None
    replayed: bool = False


@dataclass
class Posts:
    """What the page sent (observed, never changed): every POST to ``/api/v1/me/…``."""

    page: Page
    sent: list[Sent] = field(default_factory=list)
    by_request: dict[int, Sent] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def _request(self, request: Request) -> None:
        path = urlparse(request.url).path
        if request.method == "POST" and path.startswith("/api/v1/me/"):
            sent = Sent(path, request.headers.get("idempotency-key", ""), _acr(request), None)
            sent.body = request.post_data_json
            self.sent.append(sent)
            self.by_request[id(request)] = sent

    def _response(self, response: Response) -> None:
        sent = self.by_request.get(id(response.request))
        if sent is not None:
            sent.status = response.status
            sent.replayed = response.headers.get("idempotent-replayed") == "true"

    def to(self, suffix: str) -> list[Sent]:
        return [s for s in self.sent if s.path.endswith(suffix)]


def _months_from_now(stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - datetime.now(UTC)).days / 30.4


def test_answering_pausing_revoking_and_granting_again(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable, axe_source: str
) -> None:
    imss, renapo = pwa_server.agency("imss"), pwa_server.agency("renapo")
    renapo.publish(ANA, "acta_nacimiento", "Acta de nacimiento", {"nombre": "Ana García Martínez"})
    asked = imss.ask(ANA, ["acta_nacimiento"], "alta_beneficiario", WHY, days=30, per_day=5)
    clinical = imss.ask(ANA, ["expediente_clinico"], "incapacidad", "Revisar tu incapacidad")
    assert imss.release(ANA, "acta_nacimiento", "alta_beneficiario").status_code == 403

    page = phone.page
    posts = Posts(page)
    token = phone.sign_in(ANA[0], ANA[1], assets)["access_token"]
    page.wait_for_selector("text=IMSS te pide permiso para ver: Acta de nacimiento.")
    page.wait_for_selector("nav a[href='#/permisos'] .badge:text-is('2')")
    page.click("nav >> text=Permisos")
    request = _card(page, asked)
    text = request.inner_text()
    for words in ("Instituto Mexicano del Seguro Social (IMSS)", "Acta de nacimiento", WHY):
        assert words in text
    assert "Hasta cuándo" in text
    assert "Dato sensible" in _card(page, clinical).inner_text()
    assert phone.axe(axe_source) == []

    request.locator("button:has-text('Sí, dar permiso')").click()
    page.wait_for_selector("text=Hecho: dar permiso a IMSS.")
    live = _live(page, asked)
    live.locator(".tag:has-text('Activo')").wait_for()
    released = imss.release(ANA, "acta_nacimiento", "alta_beneficiario")
    assert released.status_code == 200, released.text
    assert released.json()["basis"]["consent_id"] == asked
    assert released.json()["records"][0]["data"] == {"nombre": "Ana García Martínez"}

    live.locator("button:has-text('Pausar')").click()
    live.locator(".tag:has-text('Pausado')").wait_for()
    paused = imss.release(ANA, "acta_nacimiento", "alta_beneficiario", consent_id=asked)
    assert paused.status_code == 403 and paused.json()["reason"] == "paused"
    live.locator("button:has-text('Reanudar')").click()
    live.locator(".tag:has-text('Activo')").wait_for()
    assert imss.release(ANA, "acta_nacimiento", "alta_beneficiario").status_code == 200

    live.locator("button:has-text('Quitar permiso')").click()
    page.wait_for_selector("text=¿Quitar el permiso a IMSS? Ya no podrá ver estos datos.")
    assert page.evaluate("() => document.activeElement.textContent") == "Sí, quitar permiso"
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Hecho: quitar el permiso a IMSS.")
    revoked = imss.release(ANA, "acta_nacimiento", "alta_beneficiario", consent_id=asked)
    assert revoked.status_code == 403 and revoked.json()["reason"] == "revoked"
    assert imss.request_status(asked) == "revoked"
    page.click("summary:has-text('Permisos anteriores')")
    past = _card(page, asked)
    past.locator(".tag:has-text('Quitado')").wait_for()
    # The two releases are counted where the citizen looks.
    assert "Consultas" in past.inner_text() and "2; la última, el" in past.inner_text()

    past.locator("button:has-text('Dar permiso otra vez')").click()
    page.select_option(f"[id='until-{asked}']", "6")
    past.locator("button:has-text('Dar permiso')").last.click()
    page.wait_for_selector("text=Hecho: dar permiso a IMSS.")
    consents = pwa_server.get("/api/v1/me/consents", token).json()["items"]
    again = [c for c in consents if c["status"] == "active" and c["consumer"] == "imss"]
    assert len(again) == 1 and again[0]["consent_id"] != asked
    assert again[0]["categories"] == ["acta_nacimiento"]
    assert again[0]["purpose"] == {"code": "alta_beneficiario", "text": WHY}
    assert 5.5 <= _months_from_now(again[0]["valid_until"]) <= 6.5
    _live(page, again[0]["consent_id"]).locator(".tag:has-text('Activo')").wait_for()
    renewed = imss.release(ANA, "acta_nacimiento", "alta_beneficiario")
    assert renewed.status_code == 200 and renewed.json()["basis"]["consent_id"] != asked

    # One POST per action, each with an Idempotency-Key of its own, each answered once.
    assert [s.path.removeprefix("/api/v1/me/") for s in posts.sent] == [
        f"consent-requests/{asked}/approve",
        f"consents/{asked}/pause",
        f"consents/{asked}/resume",
        f"consents/{asked}/revoke",
        "consents",
    ]
    assert len({s.key for s in posts.sent}) == 5 and all(s.key for s in posts.sent)
    assert [s.status for s in posts.sent] == [200, 200, 200, 200, 201]


def test_sensitive_request_steps_up_to_efirma_and_resends_the_same_action(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    imss = pwa_server.agency("imss")
    imss.publish(BETO, "expediente_clinico", "Expediente clínico", {"clinica": "UMF 28"})
    asked = imss.ask(BETO, ["expediente_clinico"], "incapacidad", "Revisar tu incapacidad")
    page = phone.page
    posts = Posts(page)
    phone.sign_in(BETO[0], BETO[1], assets)  # by SMS code: assurance "low"
    phone.allow(r"status of 401 .*/approve")
    page.goto(phone.url("/#/permisos"))
    card = _card(page, asked)
    assert "Dato sensible: para decidir necesitas entrar con tu e.firma." in card.inner_text()
    card.locator("button:has-text('Sí, dar permiso')").click()
    page.wait_for_selector("h3:has-text('Necesitas tu e.firma')")
    assert page.evaluate("() => document.activeElement.textContent") == "Necesitas tu e.firma"
    phone.efirma(BETO[2])
    page.wait_for_selector("text=Hecho: dar permiso a IMSS.")
    _live(page, asked).locator(".tag:has-text('Activo')").wait_for()

    first, second = posts.to("/approve")
    assert first.key == second.key  # the same action, so the same Idempotency-Key
    assert (first.acr, first.status) == ("low", 401)
    assert (second.acr, second.status) == ("high", 200)
    session = page.evaluate("() => JSON.parse(localStorage.getItem('cc.session'))")
    assert session["acr"] == "high"
    assert imss.request_status(asked) == "active"
    released = imss.release(BETO, "expediente_clinico", "incapacidad")
    assert released.status_code == 200 and released.json()["basis"]["consent_id"] == asked


def test_an_answer_lost_on_the_way_back_ends_in_exactly_one_action(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    """The signal drops on the way back: the server acts, the phone never hears the answer
    (the real answer is fetched, then the connection is cut). The phone keeps the action and
    sends it again with the key of its first attempt; the server replays its first answer."""
    imss = pwa_server.agency("imss")
    unwanted = imss.ask(CARMEN, ["acta_nacimiento"], "alta_beneficiario", WHY)
    page = phone.page
    token = phone.sign_in(CARMEN[0], CARMEN[1], assets)["access_token"]
    page.goto(phone.url("/#/permisos"))
    card = _card(page, unwanted)
    card.wait_for()
    posts = Posts(page)
    phone.allow(r"ERR_INTERNET_DISCONNECTED|Failed to fetch")
    heard: list[int] = []

    def lose_the_answer(route: Route) -> None:
        heard.append(route.fetch().status)
        route.abort("internetdisconnected")

    page.route("**/consent-requests/*/deny", lose_the_answer, times=1)
    card.locator("button:has-text('No dar permiso')").click()
    page.wait_for_selector("text=Hecho: rechazar a IMSS.")
    page.wait_for_function("() => localStorage.getItem('cc.queue') === '[]'")
    assert heard == [200]
    first, again = posts.to("/deny")
    assert first.key == again.key and first.status is None
    assert (again.status, again.replayed) == (200, True)
    assert not page.is_visible("#note.bad")  # no failure was ever shown
    assert imss.request_status(unwanted) == "denied"
    history = [h["status"] for h in pwa_server.consent(token, unwanted)["history"]]
    assert history == ["requested", "denied"]  # denied once, not twice


def test_an_action_without_signal_waits_on_the_phone_and_is_sent_once(
    phone_with_worker: Phone, pwa_server: PwaServer, assets: AssetTable
) -> None:
    """No signal at all: the action waits on the phone (the app itself comes from its service
    worker), the screens say so, and it goes out once, with its key, when the network is back.
    What left the browser is read at the proxy (the worker hides requests from Playwright)."""
    phone = phone_with_worker
    sep = pwa_server.agency("sep")
    school = sep.ask(CARMEN, ["certificado_estudios"], "inscripcion", "Inscribirte a la prepa")
    page = phone.page
    token = phone.sign_in(CARMEN[0], CARMEN[1], assets)["access_token"]
    phone.wait_for_service_worker()
    page.goto(phone.url("/#/permisos"))
    _card(page, school).locator("button:has-text('Sí, dar permiso')").click()
    _live(page, school).locator(".tag:has-text('Activo')").wait_for()
    phone.allow(r"ERR_INTERNET_DISCONNECTED|Failed to fetch")

    phone.set_offline(True)
    _live(page, school).locator("button:has-text('Pausar')").click()
    page.wait_for_selector(
        f"[id='c-{school}']:has-text('Pendiente de enviar: pausar el permiso de SEP')"
    )
    queued = json.loads(page.evaluate("() => localStorage.getItem('cc.queue')"))
    assert [q["label"] for q in queued] == ["pausar el permiso de SEP"]
    page.goto(phone.url("/#/"))
    page.wait_for_selector("text=Pendiente de enviar: pausar el permiso de SEP")
    assert pwa_server.consent(token, school)["status"] == "active"  # nothing left the phone

    pwa_server.proxy.reset()
    phone.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => localStorage.getItem('cc.queue') === '[]'")
    pauses = [
        headers["idempotency-key"]
        for method, path, headers in pwa_server.proxy.requests()
        if method == "POST" and path.endswith(f"/consents/{school}/pause")
    ]
    assert pauses == [queued[0]["key"]]
    assert pwa_server.consent(token, school)["status"] == "paused"
    page.goto(phone.url("/#/permisos"))
    _live(page, school).locator(".tag:has-text('Pausado')").wait_for()
    refused = sep.release(CARMEN, "certificado_estudios", "inscripcion", consent_id=school)
    assert refused.status_code == 403 and refused.json()["reason"] == "paused"


def _options(page: Page, select: str) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        f"{select} option", "(os) => os.map((o) => o.textContent)"
    )
    return texts


def test_granting_a_permission_from_scratch_with_the_directory(
    phone: Phone, pwa_server: PwaServer, assets: AssetTable, axe_source: str
) -> None:
    sep = pwa_server.agency("sep")
    sep.publish(DIEGO, "certificado_estudios", "Certificado de bachillerato", {"promedio": "9.1"})
    refused = sep.release(DIEGO, "certificado_estudios", "inscripcion")
    assert refused.status_code == 403 and refused.json()["reason"] == "no-consent"
    directory = pwa_server.get("/api/v1/directory").json()

    page = phone.page
    posts = Posts(page)
    token = phone.sign_in(DIEGO[0], DIEGO[1], assets)["access_token"]  # by SMS code: "low"
    page.goto(phone.url("/#/permisos"))
    page.click("button:has-text('Dar un permiso nuevo')")
    page.wait_for_selector("#g-agency")
    assert page.evaluate("() => document.activeElement.id") == "g-agency"
    agencies = [a["name"] for a in directory["agencies"] if a["requests_data"]]
    assert _options(page, "#g-agency")[1:] == sorted(agencies)
    assert not page.is_visible("#g-category")  # one question at a time

    # Nothing chosen yet: said in words, next to the question.
    page.select_option("#g-agency", "sep")
    page.click("#new-grant button:has-text('Dar permiso')")
    page.wait_for_selector("#g-category-err:has-text('Elige una opción de la lista.')")
    assert page.evaluate("() => document.activeElement.id") == "g-category"
    assert _options(page, "#g-category")[1:] == [
        "Acta de nacimiento",
        "Certificado de estudios",
        "Título y cédula profesional",
    ]
    page.select_option("#g-category", "certificado_estudios")
    page.select_option("#g-purpose", "inscripcion")
    page.select_option("#g-until", "6")
    assert not page.is_visible("#new-grant .box.warn")
    assert phone.axe(axe_source) == []
    page.click("#new-grant button:has-text('Dar permiso')")
    page.wait_for_selector("text=Hecho: dar permiso a SEP.")

    consents = pwa_server.get("/api/v1/me/consents", token).json()["items"]
    (granted,) = [c for c in consents if c["consumer"] == "sep"]
    assert granted["status"] == "active" and granted["categories"] == ["certificado_estudios"]
    assert granted["purpose"] == {"code": "inscripcion", "text": "Inscribirte a una escuela"}
    assert 5.5 <= _months_from_now(granted["valid_until"]) <= 6.5
    card = _live(page, granted["consent_id"])
    card.locator(".tag:has-text('Activo')").wait_for()
    assert "Certificado de estudios" in card.inner_text()
    released = sep.release(DIEGO, "certificado_estudios", "inscripcion")
    assert released.status_code == 200, released.text
    assert released.json()["records"][0]["data"] == {"promedio": "9.1"}

    # Sensitive data: the form warns, the server asks for e.firma, the same grant goes again.
    phone.allow(r"status of 401 .*/api/v1/me/consents")
    page.click("button:has-text('Dar un permiso nuevo')")
    page.select_option("#g-agency", "imss")
    assert "Expediente clínico · dato sensible" in _options(page, "#g-category")
    page.select_option("#g-category", "expediente_clinico")
    page.wait_for_selector(
        "#new-grant .box.warn:has-text('Dato sensible: para dar este permiso necesitas')"
    )
    page.select_option("#g-purpose", "incapacidad")
    page.click("#new-grant button:has-text('Dar permiso')")
    page.wait_for_selector("h3:has-text('Necesitas tu e.firma')")
    phone.efirma(DIEGO[2])
    page.wait_for_selector("text=Hecho: dar permiso a IMSS.")
    grants = posts.to("/api/v1/me/consents")
    assert [(s.acr, s.status) for s in grants] == [("low", 201), ("low", 401), ("high", 201)]
    assert grants[1].key == grants[2].key and grants[0].key != grants[1].key
    assert grants[2].body["categories"] == ["expediente_clinico"]
    consents = pwa_server.get("/api/v1/me/consents", token).json()["items"]
    (clinical,) = [c for c in consents if c["consumer"] == "imss"]
    assert clinical["status"] == "active" and clinical["sensitive"] is True
    _live(page, clinical["consent_id"]).locator(".tag:has-text('Activo')").wait_for()
