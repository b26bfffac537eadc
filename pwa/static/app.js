// The app: routes (#/…), the frame around every screen, sign-in, the dashboard, a procedure,
// a record, and "Mis datos". Consent and activity screens live in their own modules.
import {
  ApiError, Offline, SignedOut, act, api, backLink, busy, button, cached, categoryName, changed, fetchInto, field,
  flush, fmtDate, fmtTime, h, heading, hold, humanize, icon, itemsOf, logout, muted, net, offlineBanner, onChange, post,
  queue, refreshData, saveTokens, say, session, shortName, t,
} from "./core.js";
import { consentScreen, consentsLine, loadEfirma, requestItems } from "./consent.js";
import { activityScreen, recentActivity } from "./activity.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const netFlag = document.getElementById("net");

// ---------------------------------------------------------------- frame and routes
const go = (hash) => (location.hash === hash ? route() : (location.hash = hash));

let current = null;

function repaint(first) {
  if (!current || (hold.on && !first)) return;
  const focused = document.activeElement && document.activeElement.id;
  const fresh = h("div", null, current.screen.render(...current.args));
  if (!first) {
    // Sections the person opened stay open.
    const open = [...main.querySelectorAll("details")].map((d) => d.open);
    fresh.querySelectorAll("details").forEach((d, i) => (d.open = !!open[i]));
    // Same content, same DOM: nothing moves under a finger or a screen reader.
    if (fresh.innerHTML === main.innerHTML) return paintFrame();
  }
  main.replaceChildren(...fresh.childNodes);
  document.title = main.querySelector("h1").textContent + " · " + t("app");
  if (first) {
    // Screen readers announce the new page; keyboard users start at its top.
    main.querySelector("h1").focus();
  } else if (focused && document.getElementById(focused)) {
    document.getElementById(focused).focus();
  }
  paintFrame();
}

function paintFrame() {
  // The page's static words are Spanish; these follow the catalogue in use.
  netFlag.textContent = t("offlineShort");
  nav.setAttribute("aria-label", t("nav"));
  netFlag.hidden = !net.offline;
  const signedIn = !!session();
  nav.hidden = !signedIn;
  if (!signedIn) return;
  const here = location.hash || "#/";
  const pendingRequests = requestItems().length;
  const tabs = [
    ["#/", "⌂", t("navHome")],
    ["#/permisos", "☑", t("navConsents"), pendingRequests],
    ["#/actividad", "☰", t("navActivity")],
    ["#/mis-datos", "☺", t("navMe")],
  ];
  nav.replaceChildren(
    ...tabs.map(([href, glyph, label, count]) =>
      h("a", { href, "aria-current": here === href ? "page" : null }, icon(glyph), label,
        count ? h("span", { class: "badge" }, String(count)) : null),
    ),
  );
}

const screens = [
  [/^#\/entrar$/, () => signinScreen, false],
  [/^#\/tramite\/([\w.:-]+)$/, () => procedureScreen, true],
  [/^#\/dato\/([\w.:-]+)$/, () => recordScreen, true],
  [/^#\/permisos$/, () => consentScreen, true],
  [/^#\/actividad$/, () => activityScreen, true],
  [/^#\/mis-datos$/, () => meScreen, true],
  [/^(#\/?)?$/, () => dashboardScreen, true],
];

function route() {
  const hash = location.hash;
  const found = screens.find(([re]) => re.test(hash));
  if (!found) return location.replace("#/");
  const [re, screen, needsSession] = found;
  if (needsSession && !session()) return location.replace("#/entrar");
  if (!needsSession && session()) return location.replace("#/");
  hold.on = false;
  current = { screen: screen(), args: hash.match(re).slice(1).map(decodeURIComponent) };
  repaint(true);
  reload();
}

// Bring a screen's data up to date; offline simply means the saved copy stays on screen.
async function load(names) {
  try {
    const error = await refreshData(names);
    if (error && error.status !== 404) say(error.message, true);
  } catch (e) {
    if (e instanceof SignedOut) go("#/entrar");
  }
}

onChange((what) => {
  if (what === "session" && !session()) {
    if (current && current.screen !== signinScreen) go("#/entrar");
    return;
  }
  if (!current) return;
  // Queued actions just reached the server: what the screen shows may have changed there.
  if (what === "sent") reload();
  if (what === "net" || what === "queue" || what === "sent" || (current.screen.deps || []).includes(what)) repaint();
  else paintFrame();
});

function reload() {
  const names = current && current.screen.load ? current.screen.load(...current.args) : [];
  if (names.length) load(names);
}

// ---------------------------------------------------------------- sign-in
const CURP_SHAPE = /^[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{5}[A-Z\d]\d$/;

const signinScreen = {
  render() {
    const box = h("div", { id: "signin" });
    curpStep(box, "");
    const other = h("div", null, h("h2", null, t("orEfirma")), button(t("withEfirma"), () => efirmaStep(box, other), "secondary"));
    return [heading(t("signinTitle")), h("p", null, t("signinIntro")), box, other];
  },
};

function curpStep(box, value) {
  const input = h("input", { autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: "18", value, required: true });
  const curp = field("curp", t("curpLabel"), input, t("curpHint"));
  const sendBtn = button(t("sendCode"));
  const form = h("form", { novalidate: true }, curp, sendBtn);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = input.value.toUpperCase().replace(/\s+/g, "");
    input.value = value;
    if (value.length !== 18) return curp.fail(t("curpShort")), input.focus();
    if (!CURP_SHAPE.test(value)) return curp.fail(t("curpShape")), input.focus();
    curp.fail("");
    busy(sendBtn, () => startOtp(box, value, curp, input));
  });
  box.replaceChildren(form);
}

async function startOtp(box, curp, wrap, input) {
  try {
    const sent = await post("/auth/curp/start", { curp });
    codeStep(box, curp, sent.otp_id);
  } catch (e) {
    wrap.fail(e instanceof Offline ? t("offlineShort") : [e.message, e.detail].filter(Boolean).join(" "));
    input.focus();
  }
}

function codeStep(box, curp, otpId) {
  const input = h("input", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", pattern: "[0-9]*", required: true });
  const code = field("code", t("codeLabel"), input, t("codeHint"));
  const enter = button(t("enter"));
  const form = h("form", { novalidate: true }, h("p", { class: "box ok", role: "status" }, t("codeSent")), code, enter,
    h("div", { class: "row" },
      button(t("resend"), (ev) => busy(ev.target, () => startOtp(box, curp, code, input)), "secondary"),
      button(t("changeCurp"), () => { curpStep(box, curp); document.getElementById("curp").focus(); }, "secondary")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = input.value.replace(/\D/g, "");
    if (value.length !== 6) return code.fail(t("codeShape")), input.focus();
    busy(enter, async () => {
      try {
        signedIn(await post("/auth/curp/verify", { otp_id: otpId, code: value }));
      } catch (e) {
        code.fail(e instanceof Offline ? t("offlineShort") : e.message);
        input.select();
        input.focus();
      }
    });
  });
  box.replaceChildren(form);
  input.focus();
}

async function efirmaStep(box, other) {
  try {
    const efirma = await loadEfirma();
    other.hidden = true;
    const back = () => {
      hold.on = false;
      other.hidden = false;
      curpStep(box, "");
      document.getElementById("curp").focus();
    };
    efirma.efirmaForm(box, { onTokens: signedIn, onCancel: back });
    box.querySelector("input").focus();
  } catch (e) {
    say(e.message, true);
  }
}

function signedIn(tokens) {
  saveTokens(tokens);
  go("#/");
}

// ---------------------------------------------------------------- dashboard
const statusWord = (status) => t("status." + status);
const OPEN = new Set(["open", "action_required", "in_review"]);
const byDue = (a, b) => (a.due_date || "9999").localeCompare(b.due_date || "9999");

const dashboardScreen = {
  deps: ["me", "procedures", "records", "requests", "consents", "recent"],
  load: () => ["procedures", "records", "requests", "consents", "recent", ...(cached("me") ? [] : ["me"])],
  render() {
    const me = cached("me");
    const first = me && me.name ? me.name.split(" ")[0] : null;
    const procedures = itemsOf(cached("procedures"));
    const records = itemsOf(cached("records"));
    const known = cached("procedures") && cached("records");
    const out = [heading(first ? t("hello", { name: first }) : t("helloAnon")), offlineBanner()];

    // First what needs the person: procedures waiting on them, consent requests, unsent actions.
    const urgent = procedures.filter((p) => p.status === "action_required").sort(byDue);
    const asks = requestItems();
    const waiting = queue();
    const attention = [
      ...urgent.map((p) =>
        h("li", { class: "card warn" }, h("a", { href: "#/tramite/" + p.id }, icon("⚠"), " ", p.title),
          h("p", null, p.next_action || statusWord(p.status)), p.due_date && h("p", { class: "due" }, t("dueBy", { date: fmtDate(p.due_date) })),
          h("p", { class: "muted" }, p.agency_name))),
      ...asks.map((r) => h("li", { class: "card warn" }, h("a", { href: "#/permisos" }, icon("☑"), " ", t("asksPermission", { who: shortName(r.who), what: r.what })))),
      ...waiting.map((a) => h("li", { class: "card" }, icon("◷"), " ", t(a.stepUp ? "pendingStepUp" : "pendingSend", { what: a.label }))),
    ];
    out.push(h("section", { "aria-labelledby": "s-att" }, h("h2", { id: "s-att" }, t("attention")),
      attention.length ? h("ul", { class: "list" }, attention) : known ? h("p", { class: "box ok" }, icon("✔"), " ", t("nothingPending")) : muted(t("loading"))));

    const open = procedures.filter((p) => OPEN.has(p.status) && p.status !== "action_required").sort(byDue);
    const closed = procedures.filter((p) => !OPEN.has(p.status));
    out.push(h("section", { "aria-labelledby": "s-proc" }, h("h2", { id: "s-proc" }, t("proceduresTitle")),
      !known ? muted(t("loading")) : open.length ? h("ul", { class: "list" }, open.map(procedureItem)) : muted(t("noProcedures")),
      closed.length ? h("details", null, h("summary", null, t("finishedProcedures", { n: closed.length })), h("ul", { class: "list" }, closed.map(procedureItem))) : null));

    // Records grouped by the agency that holds them.
    const byAgency = new Map();
    for (const r of records.sort((a, b) => a.title.localeCompare(b.title))) {
      if (!byAgency.has(r.agency_name)) byAgency.set(r.agency_name, []);
      byAgency.get(r.agency_name).push(r);
    }
    out.push(h("section", { "aria-labelledby": "s-rec" }, h("h2", { id: "s-rec" }, t("recordsTitle")), h("p", { class: "muted" }, t("recordsIntro")),
      !known ? muted(t("loading")) : byAgency.size === 0 ? muted(t("noRecords")) :
        [...byAgency].sort(([a], [b]) => a.localeCompare(b)).map(([agency, list]) =>
          h("div", { class: "group" }, h("h3", null, agency), h("ul", { class: "list" }, list.map((r) =>
            h("li", null, h("a", { href: "#/dato/" + r.id, class: "item" }, h("span", { class: "t" }, r.title),
              r.category_name !== r.title ? h("span", { class: "muted small" }, r.category_name) : null))))))));

    const consents = consentsLine();
    if (consents) out.push(h("section", { "aria-labelledby": "s-con" }, h("h2", { id: "s-con" }, t("navConsents")), consents));
    out.push(h("section", { "aria-labelledby": "s-act" }, h("h2", { id: "s-act" }, t("recentActivity")), recentActivity(3),
      h("p", null, h("a", { href: "#/actividad", class: "go" }, t("seeActivity")))));
    out.push(h("p", null, h("a", { href: "#/mis-datos", class: "go" }, icon("⬇"), " ", t("exportGo"))));
    return out;
  },
};

function procedureItem(p) {
  return h("li", null, h("a", { href: "#/tramite/" + p.id, class: "item" }, h("span", { class: "t" }, p.title),
    h("span", { class: "small" }, h("span", { class: "tag " + p.status }, statusWord(p.status)), " · ", p.agency_name)));
}

// ---------------------------------------------------------------- one procedure
const drafts = {};

const procedureScreen = {
  deps: ["queue"],
  load(id) {
    this.deps = ["p." + id, "queue"];
    fetchInto("p." + id, "/api/v1/me/procedures/" + encodeURIComponent(id)).catch(notFound);
    return [];
  },
  render(id) {
    const p = cached("p." + id) || itemsOf(cached("procedures")).find((x) => x.id === id);
    if (!p) return [backLink(), heading(t("loading")), offlineBanner()];
    const who = shortName(p.agency_name);
    const out = [backLink(), heading(p.title), h("p", null, p.agency_name), offlineBanner(),
      h("p", null, h("span", { class: "tag " + p.status }, statusWord(p.status)))];
    if (p.next_action) out.push(h("div", { class: "box warn" }, h("h2", null, t("nextStep")), h("p", null, p.next_action)));
    if (p.due_date) out.push(h("p", { class: "due" }, t("dueBy", { date: fmtDate(p.due_date) })));
    if (p.steps && p.steps.length) {
      out.push(h("h2", null, t("steps")), h("ol", { class: "steps" }, p.steps.map((s) =>
        h("li", { class: s.done ? "done" : "" }, icon(s.done ? "✔" : "○"), " ", s.title,
          h("span", { class: "sr" }, " (" + t(s.done ? "stepDone" : "stepPending") + ")"), s.date ? h("span", { class: "muted small" }, fmtDate(s.date)) : null))));
    }
    if (p.contact) out.push(h("p", null, h("strong", null, t("contact") + ": "), p.contact));

    const messages = p.messages || [];
    const unsent = queue().filter((a) => a.path === messagesPath(id));
    out.push(h("h2", { id: "msgs" }, t("messages")),
      messages.length || unsent.length ? h("ul", { class: "thread", "aria-labelledby": "msgs" },
        messages.map((m) => h("li", { class: m.author === "citizen" ? "mine" : "theirs" },
          h("p", { class: "small" }, h("strong", null, m.author === "citizen" ? t("you") : who), " · ", fmtTime(m.created_at)), h("p", null, m.body))),
        unsent.map((a) => h("li", { class: "mine pending" }, h("p", { class: "small" }, icon("◷"), " ", t("pendingSend", { what: t("act.message", { who }) })), h("p", null, a.body.body))))
        : muted(t("noMessages")));

    const text = h("textarea", { rows: "4", maxlength: "2000", value: drafts[id] || "" });
    text.addEventListener("input", () => (drafts[id] = text.value));
    const wrap = field("message", t("writeTo", { who }), text, t("messageHint"));
    const sendBtn = button(t("send"));
    const form = h("form", { novalidate: true }, wrap, sendBtn);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = text.value.trim();
      if (!body) return wrap.fail(t("messageEmpty")), text.focus();
      busy(sendBtn, async () => {
        try {
          const { queued } = await act({ path: messagesPath(id), body: { body }, label: t("act.message", { who }) });
          drafts[id] = "";
          say(queued ? t("messageQueued") : t("messageSent"));
          if (!queued) await fetchInto("p." + id, "/api/v1/me/procedures/" + encodeURIComponent(id));
          else repaint();
        } catch (e) {
          wrap.fail(e.message);
        }
      });
    });
    out.push(form);
    return out;
  },
};
const messagesPath = (id) => "/api/v1/me/procedures/" + encodeURIComponent(id) + "/messages";

function notFound(e) {
  if (e instanceof ApiError && e.status === 404) {
    main.replaceChildren(backLink(), heading(t("notFound")));
    main.querySelector("h1").focus();
  } else if (e instanceof Offline) {
    net.offline = true;
    changed("net");
  } else if (e instanceof SignedOut) {
    go("#/entrar");
  }
}

// ---------------------------------------------------------------- one record
const recordScreen = {
  load(id) {
    this.deps = ["r." + id];
    fetchInto("r." + id, "/api/v1/me/records/" + encodeURIComponent(id)).catch(notFound);
    return [];
  },
  render(id) {
    const r = cached("r." + id) || itemsOf(cached("records")).find((x) => x.id === id);
    if (!r) return [backLink(), heading(t("loading")), offlineBanner()];
    const rows = Object.entries(r.data || {}).map(([k, v]) =>
      [h("dt", null, humanize(k)), h("dd", null, typeof v === "object" ? JSON.stringify(v) : String(v))]);
    return [backLink(), heading(r.title), h("p", null, t("recordFrom", { who: r.agency_name })), offlineBanner(),
      h("dl", { class: "facts" }, h("dt", null, t("category")), h("dd", null, r.category_name || categoryName(r.category)),
        r.issued_at ? [h("dt", null, t("issuedAt")), h("dd", null, fmtDate(r.issued_at))] : null),
      r.data ? [h("h2", null, t("content")), h("dl", { class: "facts" }, rows)] : muted(t("loading")),
      r.signed ? h("p", { class: "box ok" }, icon("✔"), " ", t("signedByAgency")) : null,
      h("details", null, h("summary", null, t("digest")), h("p", { class: "mono" }, r.digest))];
  },
};

// ---------------------------------------------------------------- me: profile, export, queue, sign out
const meScreen = {
  deps: ["me", "queue"],
  load: () => ["me"],
  render() {
    const me = cached("me");
    const s = session();
    const waiting = queue();
    const exportBtn = button(t("exportGo"), (ev) => busy(ev.target, download));
    return [heading(t("meTitle")), offlineBanner(),
      me ? h("dl", { class: "facts" },
        h("dt", null, t("name")), h("dd", null, me.name || "—"),
        h("dt", null, t("curp")), h("dd", { class: "mono" }, me.curp),
        me.phone ? [h("dt", null, t("phone")), h("dd", null, me.phone)] : null,
        h("dt", null, t("level")), h("dd", null, t("acr." + ((me.assurance && me.assurance.level) || (s && s.acr))))) : muted(t("loading")),
      h("section", { "aria-labelledby": "s-exp" }, h("h2", { id: "s-exp" }, t("exportTitle")), h("p", null, t("exportText")), exportBtn),
      waiting.length ? h("section", { "aria-labelledby": "s-q" }, h("h2", { id: "s-q" }, t("pendingTitle", { n: waiting.length })),
        h("ul", { class: "list" }, waiting.map((a) => h("li", { class: "card" }, icon("◷"), " ", a.label))),
        button(t("sendNow"), (ev) => busy(ev.target, flush), "secondary")) : null,
      h("section", { "aria-labelledby": "s-out" }, h("h2", { id: "s-out" }, t("logout")), h("p", null, t("logoutHint")),
        button(t("logout"), async (ev) => { await busy(ev.target, logout); go("#/entrar"); }, "secondary"))];
  },
};

// The export needs the bearer token, so it is fetched and handed over as a file.
async function download() {
  try {
    const r = await api("/api/v1/me/export", { raw: true });
    const name = ((r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/) || [])[1] || "carpeta.json";
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
    say(t("exportDone"));
  } catch (e) {
    say(e instanceof Offline ? t("offlineShort") : e.message, true);
  }
}

// ---------------------------------------------------------------- start
window.addEventListener("hashchange", route);
window.addEventListener("online", () => {
  net.offline = false;
  changed("net");
  reload();
  flush();
});
window.addEventListener("offline", () => {
  net.offline = true;
  changed("net");
});
// A queued action may wait for a network that came back without an "online" event.
setInterval(() => queue().length && session() && flush(), 30000);
route();
if (session()) flush();

if ("serviceWorker" in navigator) {
  // After the page is up, so the worker's downloads never compete with the first paint.
  addEventListener("load", () => navigator.serviceWorker.register("/sw.js").catch(() => {}));
}
