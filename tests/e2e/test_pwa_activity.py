"""Activity on the phone, from the real ledger: every event in plain words, each one's
inclusion proof and the checkpoint's signature verified in Chromium, paging back with
``next_before`` ("Ver más"), and the phone's own check that the log only grew since the last
checkpoint it verified (RFC 9162 consistency proof).

The only interference is an attacker's: real answers fetched from the server and altered in
flight (one byte of a leaf, of a checkpoint, of a consistency proof). The phone must then say
it could not verify — never "verified". Without Ed25519 in the browser (removed from WebCrypto
by an init script) it must say it could not check the signature."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from pwa.assets import AssetTable
from tests.e2e.pwa_support import (
    FERNANDO,
    Phone,
    PwaServer,
    assets,
    axe_source,
    b64,
    browser,
    phone,
    pwa_server,
    record,
)

pytestmark = pytest.mark.e2e
__all__ = ["assets", "axe_source", "browser", "phone", "pwa_server"]  # fixtures used below

VERIFIED = "Tu teléfono comprobó la firma de la bitácora."
_made: dict[str, int] = {}


@pytest.fixture
def history(pwa_server: PwaServer) -> int:
    """Fernando's life in the ledger (made once): records published, six accesses under a
    statute, a consent asked and given, a release under it, a refusal and one more access by
    law — 13 events, so the first page (10) leaves 3 for "Ver más". Returns their count."""
    if pwa_server.base not in _made:
        renapo, imss = pwa_server.agency("renapo"), pwa_server.agency("imss")
        sat, sep, bienestar = (pwa_server.agency(a) for a in ("sat", "sep", "bienestar"))
        renapo.publish(FERNANDO, "acta_nacimiento", "Acta de nacimiento", {"folio": "00871"})
        imss.publish(FERNANDO, "nss_imss", "Número de seguridad social", {"nss": "12345678901"})
        for _ in range(6):
            assert sat.release(FERNANDO, "acta_nacimiento", "verificacion_identidad").is_success
        asked = imss.ask(FERNANDO, ["acta_nacimiento"], "alta_beneficiario", "Alta de tu hija")
        token = pwa_server.tokens(FERNANDO[0], FERNANDO[1])["access_token"]
        approve = f"/api/v1/me/consent-requests/{asked}/approve"
        assert pwa_server.post(approve, token).status_code == 200
        assert imss.release(FERNANDO, "acta_nacimiento", "alta_beneficiario").is_success
        assert sep.release(FERNANDO, "acta_nacimiento", "inscripcion").status_code == 403
        assert bienestar.release(FERNANDO, "acta_nacimiento", "programa_social").is_success
        pwa_server.wait_ledger(token)
        _made[pwa_server.base] = 13
    return _made[pwa_server.base]


def _verdicts(page: Page) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "#events li", "(els) => els.map((e) => e.dataset.verdict)"
    )
    return found


def _seen(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("() => JSON.parse(localStorage.getItem('ccl.seen'))")
    return value


def _open_activity(phone: Phone) -> Page:
    """Go to the activity screen as a person does (tab bar), from the dashboard."""
    page = phone.page
    page.goto(phone.url("/#/"))
    page.wait_for_selector("h1:has-text('Hola')")
    page.click("nav >> text=Actividad")
    page.wait_for_selector("#log-status")
    return page


def _new_event(server: PwaServer, token: str) -> None:
    """One more access by law (a ledger event), integrated into a new signed checkpoint."""
    before = server.checkpoint_size()
    released = server.agency("sat").release(FERNANDO, "acta_nacimiento", "verificacion_identidad")
    assert released.status_code == 200, released.text
    deadline = time.monotonic() + 15
    while server.checkpoint_size() <= before:
        assert time.monotonic() < deadline, "the sequencer did not integrate"
        time.sleep(0.1)
    server.wait_ledger(token)


def test_activity_is_told_in_words_verified_and_paged_back(
    phone: Phone, pwa_server: PwaServer, history: int, assets: AssetTable, axe_source: str
) -> None:
    phone.sign_in(FERNANDO[0], FERNANDO[1], assets)
    page = _open_activity(phone)
    page.wait_for_selector(f"#log-status:has-text('{VERIFIED}')")
    page.wait_for_selector("#log-chain[data-chain=first]")
    assert "Primera revisión en este teléfono" in page.inner_text("#log-chain")
    text = page.inner_text("#events")
    assert "Secretaría de Bienestar consultó tu acta de nacimiento." in text
    assert (
        "Sin pedirte permiso, porque la ley lo permite: Art. 91 Ley General de Población." in text
    )
    assert "SEP intentó consultar tu acta de nacimiento y no se le permitió." in text
    assert "IMSS consultó tu acta de nacimiento." in text
    assert "Para: Dar de alta a un beneficiario." in text
    assert "Diste permiso a IMSS para ver tu acta de nacimiento." in text
    assert "IMSS te pidió permiso para ver tu acta de nacimiento." in text
    assert "Art. 27 Código Fiscal de la Federación" in text
    assert _verdicts(page) == ["verified"] * 10
    assert text.count("Verificado en tu teléfono") == 10
    assert phone.axe(axe_source) == []

    # Older events: one page back with next_before, proved and verified like the first.
    token = pwa_server.tokens(FERNANDO[0], FERNANDO[1])["access_token"]
    total = len(pwa_server.get("/api/v1/me/activity?limit=100", token).json()["items"])
    assert history <= total <= 20
    pwa_server.proxy.reset()
    page.click("#more")
    page.wait_for_selector(f"#events li:nth-child({total})")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#events li')]"
        ".every((li) => li.dataset.verdict === 'verified')"
    )
    page.wait_for_load_state("networkidle")
    assert len(_verdicts(page)) == total
    more = [f"{method} {path}" for method, path, _ in pwa_server.proxy.requests()]
    assert any(r.startswith("GET /api/v1/me/activity?limit=10&before=") for r in more), more
    focused = page.evaluate("() => document.activeElement.id")
    assert focused.startswith("ev-")  # keyboard and screen reader users land on what is new
    text = page.inner_text("#events")
    assert "RENAPO guardó tu acta de nacimiento en tu carpeta." in text
    assert "IMSS guardó tu número de seguridad social (IMSS) en tu carpeta." in text
    assert not page.is_visible("#more")
    assert page.is_visible("text=No hay registros más antiguos.")
    shown = {"bytes": pwa_server.proxy.down, "events": total - 10, "requests": more}
    record("screens", {"activity: 'Ver más' (older events)": shown}, merge=True)


def test_the_phone_checks_the_log_only_grew_and_catches_a_forged_proof(
    phone: Phone, pwa_server: PwaServer, history: int, assets: AssetTable
) -> None:
    token = phone.sign_in(FERNANDO[0], FERNANDO[1], assets)["access_token"]
    page = _open_activity(phone)
    page.wait_for_selector("#log-chain[data-chain=first]")
    first = _seen(page)["size"]

    # The log grew: the phone asks for a consistency proof from what it saw to what it sees.
    _new_event(pwa_server, token)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/proofs/consistency" in r.url else None)
    page.goto(phone.url("/#/mis-datos"))
    page.wait_for_selector("h1:has-text('Mis datos')")
    page.wait_for_load_state("networkidle")
    pwa_server.proxy.reset()
    page.click("nav >> text=Actividad")
    page.wait_for_selector("#log-chain[data-chain=grew]")
    page.wait_for_load_state("networkidle")
    sent = [f"{method} {path}" for method, path, _ in pwa_server.proxy.requests()]
    again = {"bytes": pwa_server.proxy.down, "requests": sent}
    record("screens", {"activity again, the log grew (with consistency proof)": again}, merge=True)
    second = _seen(page)["size"]
    assert second > first
    assert asked == [f"{phone.url()}ledger/proofs/consistency?first={first}&second={second}"]
    assert f"de {first} a {second} registros" in page.inner_text("#log-chain")
    assert page.is_visible("#log-status.ok")

    # An attacker between phone and server alters one byte of the real proof.
    forged: list[int] = []

    def forge(route: Route) -> None:
        real = route.fetch()
        body = real.json()
        hashes = body["hashes"]
        altered = bytearray(base64.b64decode(hashes[-1]))
        altered[0] ^= 0x01
        hashes[-1] = b64(bytes(altered))
        forged.append(len(hashes))
        route.fulfill(response=real, json=body)

    page.route("**/ledger/proofs/consistency?*", forge)
    _new_event(pwa_server, token)
    page = _open_activity(phone)
    page.wait_for_selector("#log-chain[data-chain=bad]")
    assert forged
    assert page.is_visible("#log-status.bad")
    assert (
        f"¡Alerta! Esta bitácora no continúa la que tu teléfono revisó antes ({second} registros)"
        in page.inner_text("#log-chain")
    )
    assert _seen(page)["size"] == second  # what failed never becomes the reference

    # The attacker gone, the same check passes from the reference it kept.
    page.unroute("**/ledger/proofs/consistency?*")
    page = _open_activity(phone)
    page.wait_for_selector("#log-chain[data-chain=grew]")
    third = _seen(page)["size"]
    assert third > second
    assert f"de {second} a {third} registros" in page.inner_text("#log-chain")

    # Nothing new: no proof is needed, and none is asked for.
    asked.clear()
    page = _open_activity(phone)
    page.wait_for_selector("#log-chain[data-chain=same]")
    page.wait_for_load_state("networkidle")
    assert asked == []


def test_an_event_or_checkpoint_altered_in_flight_is_not_shown_as_verified(
    phone: Phone, pwa_server: PwaServer, history: int, assets: AssetTable
) -> None:
    phone.sign_in(FERNANDO[0], FERNANDO[1], assets)
    page = phone.page
    target = {"what": "leaf"}

    def alter(route: Route) -> None:
        real = route.fetch()
        body = real.json()
        if target["what"] == "leaf":
            # An access by the SAT, rewritten to look like one by the SEP.
            item = next(i for i in body["items"] if i["event"]["consumer"] == "sat")
            leaf = base64.b64decode(item["leaf"])
            item["leaf"] = b64(leaf.replace(b'"consumer":"sat"', b'"consumer":"sep"'))
        else:
            origin, size, root, *rest = body["checkpoint"].split("\n")
            altered = bytearray(base64.b64decode(root))
            altered[0] ^= 0x01
            body["checkpoint"] = "\n".join([origin, size, b64(bytes(altered)), *rest])
        route.fulfill(response=real, json=body)

    page.route(lambda url: "/api/v1/me/activity?limit=10" in url, alter)
    page = _open_activity(phone)
    page.wait_for_selector("#events li[data-verdict=bad]")
    page.wait_for_selector(f"#log-status:has-text('{VERIFIED}')")
    bad = page.locator("#events li[data-verdict=bad]")
    assert bad.count() == 1
    assert "¡No coincide con la bitácora!" in bad.inner_text()
    assert _verdicts(page).count("verified") == 9

    target["what"] = "checkpoint"
    page = _open_activity(phone)
    page.wait_for_selector(
        "#log-status.bad:has-text('¡Alerta! La firma de la bitácora no es válida.')"
    )
    assert set(_verdicts(page)) == {"bad"}
    assert not page.is_visible("#log-chain")  # no continuity claim on an unverified checkpoint


NO_ED25519 = """
(() => {
  const isEd = (a) => a === "Ed25519" || (a && a.name === "Ed25519");
  const refuse = () => Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"));
  for (const name of ["importKey", "verify", "generateKey"]) {
    const real = SubtleCrypto.prototype[name];
    SubtleCrypto.prototype[name] = function (...args) {
      const algorithm = name === "importKey" ? args[2] : args[0];
      return isEd(algorithm) ? refuse() : real.apply(this, args);
    };
  }
})();
"""


def test_without_ed25519_the_phone_says_it_could_not_verify(
    phone: Phone, pwa_server: PwaServer, history: int, assets: AssetTable
) -> None:
    phone.context.add_init_script(NO_ED25519)
    phone.sign_in(FERNANDO[0], FERNANDO[1], assets)
    page = _open_activity(phone)
    supported = page.evaluate(
        "() => crypto.subtle.importKey('raw', new Uint8Array(32), {name: 'Ed25519'}, false,"
        " ['verify']).then(() => true, () => false)"
    )
    assert supported is False
    page.wait_for_selector(
        "#log-status.warn:has-text('No verificado en este dispositivo: este teléfono no puede"
        " comprobar la firma (Ed25519).')"
    )
    assert set(_verdicts(page)) == {"unsupported"}
    assert page.inner_text("#events").count("No verificado en este dispositivo") == 10
    assert "Verificado en tu teléfono" not in page.inner_text("main")
    assert not page.is_visible("#log-chain")
    assert (
        json.loads(page.evaluate("() => JSON.stringify(localStorage.getItem('ccl.seen'))")) is None
    )
