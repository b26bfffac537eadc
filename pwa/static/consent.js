// Consent: answer agencies' requests, pause, resume, revoke, grant again, and grant from
// scratch (agency → data → purpose → until when, from the public directory). Each action goes
// out with an Idempotency-Key, or waits in the offline queue; a sensitive category asks for
// e.firma first (step-up) and the same action, same key, is sent again afterwards.
import {
  act, agencyName, busy, button, cached, categoryName, changed, claims, field, flush, fmtDate, h, heading, hold, icon,
  itemsOf, muted, offlineBanner, post, purposeName, queue, refreshData, saveTokens, say, session, shortName, t,
} from "./core.js";

// The e.firma code (ASN.1, PBKDF2, 3DES, signing) is only downloaded when someone needs it.
// Online and still failing means this page is older than the server's files: reopen.
export async function loadEfirma() {
  try {
    return await import("./efirma.js");
  } catch {
    throw new Error(t(navigator.onLine ? "reloadNeeded" : "efirmaLoadFailed"));
  }
}

// One shape for requests and consents, whatever optional names the server adds.
function view(c) {
  const consumer = c.data_consumer || c.consumer;
  const purpose = c.purpose && typeof c.purpose === "object" ? c.purpose : { code: c.purpose };
  const categories = c.categories || [];
  return {
    id: c.id || c.consent_id || c.request_id,
    consumer,
    who: c.consumer_name || agencyName(consumer),
    categories,
    what: (c.category_names || categories.map(categoryName)).join(", "),
    purposeCode: purpose.code,
    why: c.purpose_text || purpose.text || purposeName(purpose.code),
    until: c.valid_until,
    used: c.use_count || 0,
    lastUsed: c.last_used_at,
    status: c.status || "requested",
    sensitive: !!(c.sensitive || ["substantial", "high"].includes(c.required_acr)),
    receipt: c.receipt,
  };
}

export const requestItems = () => itemsOf(cached("requests")).map(view).filter((r) => r.status === "requested");
const consentItems = () => itemsOf(cached("consents")).map(view);

export function consentsLine() {
  if (!cached("consents")) return null;
  const active = consentItems().filter((c) => c.status === "active").length;
  return h("p", null, t("consentsSummary", { n: active }), " ",
    h("a", { href: "#/permisos", class: "go" }, t("seeConsents")));
}

const ACTIONS = {
  approve: (id) => "/api/v1/me/consent-requests/" + encodeURIComponent(id) + "/approve",
  deny: (id) => "/api/v1/me/consent-requests/" + encodeURIComponent(id) + "/deny",
  pause: (id) => "/api/v1/me/consents/" + encodeURIComponent(id) + "/pause",
  resume: (id) => "/api/v1/me/consents/" + encodeURIComponent(id) + "/resume",
  revoke: (id) => "/api/v1/me/consents/" + encodeURIComponent(id) + "/revoke",
};

export const consentScreen = {
  deps: ["requests", "consents", "queue"],
  load: () => ["requests", "consents"],
  render() {
    const out = [heading(t("consentsTitle")), h("p", null, t("consentsIntro")), offlineBanner()];
    if (!cached("requests") && !cached("consents")) return [...out, muted(t("loading"))];
    const waiting = queue();
    const asks = requestItems();
    out.push(h("section", { "aria-labelledby": "s-req" }, h("h2", { id: "s-req" }, t("requestsTitle")),
      asks.length ? h("ul", { class: "list" }, asks.map((r) => card(r, waiting, ["approve", "deny"]))) : muted(t("noRequests"))));
    const all = consentItems();
    const live = all.filter((c) => c.status === "active" || c.status === "paused");
    out.push(h("section", { "aria-labelledby": "s-live" }, h("h2", { id: "s-live" }, t("activeTitle")),
      live.length ? h("ul", { class: "list" }, live.map((c) => card(c, waiting, [c.status === "active" ? "pause" : "resume", "revoke"])))
        : muted(t("noActive"))));
    const past = all.filter((c) => !["active", "paused", "requested"].includes(c.status));
    if (past.length) {
      out.push(h("details", null, h("summary", null, t("pastTitle", { n: past.length })),
        h("ul", { class: "list" }, past.map((c) => card(c, waiting, ["grant"])))));
    }
    const slot = h("div", { class: "slot", id: "new-grant" });
    out.push(h("section", { "aria-labelledby": "s-new" }, h("h2", { id: "s-new" }, t("newTitle")), h("p", null, t("newIntro")),
      slot, h("button", { type: "button", class: "secondary", id: "new-go", onclick: (ev) => busy(ev.target, () => newGrant(slot, ev.target)) }, t("newGo"))));
    return out;
  },
};

function card(c, waiting, actions) {
  const slot = h("div", { class: "slot" });
  const mine = waiting.filter((a) => a.target === c.id);
  const li = h("li", { class: "card", id: "c-" + c.id },
    h("h3", null, c.who),
    c.status !== "requested" ? h("p", null, h("span", { class: "tag " + c.status }, t("consent." + c.status))) : null,
    h("dl", { class: "facts" },
      h("dt", null, t("what")), h("dd", null, c.what),
      h("dt", null, t("why")), h("dd", null, c.why),
      c.until ? [h("dt", null, t("until")), h("dd", null, fmtDate(c.until))] : null,
      c.used ? [h("dt", null, t("used")), h("dd", null, t("usedTimes", { n: c.used, when: fmtDate(c.lastUsed) }))] : null),
    c.sensitive && c.status === "requested" ? h("p", { class: "box warn" }, icon("⚠"), " ", t("sensitive")) : null,
    mine.map((a) => h("p", { class: "box warn" }, icon("◷"), " ", t(a.stepUp ? "pendingStepUp" : "pendingSend", { what: a.label }),
      a.stepUp ? button(t("withEfirma"), () => stepUp(slot, a, true), "secondary") : null)),
    mine.length ? null : h("div", { class: "row" }, actions.map((kind) => actionButton(kind, c, slot))),
    slot,
    c.receipt ? h("details", null, h("summary", null, t("receipt")), h("p", { class: "mono small" }, c.receipt)) : null);
  return li;
}

function actionButton(kind, c, slot) {
  const who = shortName(c.who);
  const label = t("act." + kind, { who });
  if (kind === "revoke") return button(t("revoke"), () => confirmRevoke(c, slot, label), "secondary");
  if (kind === "grant") return button(t("grantAgain"), () => grantForm(c, slot, label), "secondary");
  return button(t(kind), (ev) => run(ev.target, slot, { path: ACTIONS[kind](c.id), label, target: c.id }),
    kind === "approve" || kind === "resume" ? "primary" : "secondary");
}

// Revoking cannot be undone by the agency, so it takes a second, explicit yes.
function confirmRevoke(c, slot, label) {
  hold.on = true;
  const yes = button(t("revokeYes"), (ev) => run(ev.target, slot, { path: ACTIONS.revoke(c.id), label, target: c.id }), "danger");
  slot.replaceChildren(h("div", { class: "box warn", role: "group", "aria-label": t("revoke") },
    h("p", null, t("revokeConfirm", { who: shortName(c.who) })),
    h("div", { class: "row" }, yes, button(t("cancel"), () => done(slot), "secondary"))));
  yes.focus();
}

// How long a permission lasts, chosen in months (a year by default).
function untilField(id) {
  const choice = h("select", null,
    h("option", { value: "3" }, t("months", { n: 3 })), h("option", { value: "6" }, t("months", { n: 6 })),
    h("option", { value: "12", selected: true }, t("oneYear")));
  const wrap = field(id, t("grantUntil"), choice);
  wrap.date = () => {
    const until = new Date();
    until.setMonth(until.getMonth() + Number(choice.value));
    return until.toISOString();
  };
  return wrap;
}

function grantForm(c, slot, label) {
  hold.on = true;
  const until = untilField("until-" + c.id);
  const go = button(t("grant"), (ev) => {
    const body = { consumer: c.consumer, categories: c.categories, purpose: c.purposeCode, purpose_text: c.why, valid_until: until.date() };
    run(ev.target, slot, { path: "/api/v1/me/consents", body, label, target: c.id });
  });
  slot.replaceChildren(until, go);
  until.querySelector("select").focus();
}

// Granting from scratch is a rarer path: its form loads when chosen (like the e.firma code).
async function newGrant(slot, opener) {
  try {
    const { newGrantForm } = await import("./grant.js");
    await newGrantForm(slot, opener, { run, done, untilField });
  } catch (e) {
    say(e.message && !(e instanceof TypeError) ? e.message : t(navigator.onLine ? "reloadNeeded" : "offlineShort"), true);
  }
}

// The card is free again: show what the phone holds now (also what waits to be sent), then
// ask the server for what changed.
function done(slot) {
  hold.on = false;
  slot.replaceChildren();
  changed("queue");
  refreshData(["requests", "consents"]);
}

// While an action travels, fresh data must not repaint the card it belongs to (its answer,
// or the step-up form, goes into that card's slot).
async function run(btn, slot, action, onDone) {
  hold.on = true;
  await busy(btn, async () => {
    try {
      const { queued } = await act(action);
      say(t(queued ? "queued" : "done", { what: action.label }));
      if (onDone) onDone();
      done(slot);
    } catch (e) {
      if (e.stepUp) return stepUp(slot, action, false, onDone);
      say(t("failed", { what: action.label, why: [e.message, e.detail].filter(Boolean).join(" ") }), true);
      if (!slot.querySelector("form, select")) done(slot);
    }
  });
}

// Step-up: sign in again with e.firma (assurance "high"), as the same person, then send the
// same action again with its first Idempotency-Key.
async function stepUp(slot, action, fromQueue, onDone) {
  hold.on = true;
  const box = h("div");
  slot.replaceChildren(h("div", { class: "box warn" }, h("h3", { tabindex: "-1" }, t("stepUpTitle")), h("p", null, t("stepUpText")), box));
  slot.querySelector("h3").focus();
  let efirma;
  try {
    efirma = await loadEfirma();
  } catch (e) {
    return say(e.message, true);
  }
  efirma.efirmaForm(box, {
    async onTokens(tokens) {
      const before = session();
      if (before && claims(tokens.access_token).sub !== before.sub) {
        post("/auth/logout", { refresh_token: tokens.refresh_token }).catch(() => {});
        throw new Error(t("efirmaOtherPerson"));
      }
      saveTokens(tokens);
      if (fromQueue) {
        await flush();
        return done(slot);
      }
      const { queued } = await act(action);
      say(t(queued ? "queued" : "done", { what: action.label }));
      if (onDone) onDone();
      done(slot);
    },
  });
}
