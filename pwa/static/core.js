// What every screen needs: the words, building DOM safely, what the phone keeps, and the API
// client (rotating tokens, Idempotency-Key on every POST, delta sync, the offline queue).
import base from "./strings.es-MX.js";

// ---------------------------------------------------------------- words
let words = base;
export const lang = "es-MX";
export function t(key, vars) {
  let s = words[key] ?? base[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  return s;
}
// Another catalogue (same keys) replaces ours; missing keys stay in Spanish.
export function useStrings(more) {
  words = { ...base, ...more };
}
const dates = new Intl.DateTimeFormat(lang, { day: "numeric", month: "long", year: "numeric" });
const times = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit" });
// A bare date ("2026-12-15"), or a midnight-UTC stamp that agencies send for one, is read at
// local noon: otherwise Mexico's UTC-6 would show the day before.
export function fmtDate(v) {
  if (!v) return "";
  const day = /^(\d{4}-\d\d-\d\d)(T00:00(:00(\.0+)?)?(Z|\+00:00))?$/.exec(v);
  return dates.format(new Date(day ? day[1] + "T12:00:00" : v));
}
export const fmtTime = (v) => (v ? times.format(new Date(v)) : "");
export const humanize = (code) => (code ? String(code).replace(/_/g, " ") : "");

// ---------------------------------------------------------------- DOM
// Elements from data, never from HTML strings: text is always text (no injection), and no
// inline style or script ever appears (the CSP forbids both).
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value") el.value = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
  }
  for (const kid of kids.flat(9)) if (kid != null && kid !== false) el.append(kid);
  return el;
}
const $ = (id) => document.getElementById(id);
// Status lines for screen readers and sighted people alike (role=status / role=alert).
let quiet = 0;
export function say(message, urgent) {
  const box = $("note");
  box.textContent = "";
  box.className = urgent ? "note bad" : "note";
  box.setAttribute("role", urgent ? "alert" : "status");
  clearTimeout(quiet);
  if (!message) return;
  // Emptied first and filled a frame later, so the same words are announced again.
  requestAnimationFrame(() => (box.textContent = message));
  if (!urgent) quiet = setTimeout(() => (box.textContent = ""), 8000);
}

// Pieces every screen uses.
export const icon = (glyph) => h("span", { class: "ico", "aria-hidden": "true" }, glyph);
export const heading = (text) => h("h1", { id: "title", tabindex: "-1" }, text);
export const muted = (text) => h("p", { class: "muted" }, text);
export const backLink = () => h("p", null, h("a", { href: "#/", class: "go" }, "← " + t("back")));
export function button(label, onclick, kind) {
  return h("button", { type: onclick ? "button" : "submit", class: kind || "primary", onclick }, label);
}
// A labelled input with its hint and its error line, tied together for screen readers.
export function field(id, label, input, hint) {
  const err = h("p", { id: id + "-err", class: "err", hidden: true });
  input.id = id;
  input.setAttribute("aria-describedby", (hint ? id + "-hint " : "") + id + "-err");
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label),
    hint && h("p", { id: id + "-hint", class: "hint" }, hint), input, err);
  wrap.fail = (message) => {
    err.textContent = message || "";
    err.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
  return wrap;
}
// A button that shows it is working and cannot be pressed twice.
export async function busy(btn, work) {
  const label = btn.textContent;
  btn.disabled = true;
  btn.textContent = t("working");
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.textContent = label;
  }
}
// While a form holds what the person typed or chose (files, a confirmation), new data must
// not repaint the screen under their fingers; the app repaints once they are done.
export const hold = { on: false };

// ---------------------------------------------------------------- what the phone keeps
// localStorage, under one prefix so "Salir" can wipe everything at once.
const P = "cc.";
export const keep = {
  get(k) {
    try {
      return JSON.parse(localStorage.getItem(P + k));
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      localStorage.setItem(P + k, JSON.stringify(v));
    } catch {
      // Storage full or blocked: the app keeps working, it only forgets sooner.
    }
  },
  wipe() {
    for (const k of Object.keys(localStorage)) if (k.startsWith(P)) localStorage.removeItem(k);
  },
};

const listeners = new Set();
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
export const changed = (what) => listeners.forEach((fn) => fn(what));

// ---------------------------------------------------------------- session
export const session = () => keep.get("session");
export function claims(jwt) {
  try {
    return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}
export function saveTokens(tokens) {
  const c = claims(tokens.access_token);
  const s = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    exp: Date.now() + tokens.expires_in * 1000,
    acr: tokens.acr || c.acr,
    sub: c.sub,
  };
  const before = session();
  // Another person on a shared phone: nothing of the previous one may stay.
  if (before && before.sub !== s.sub) keep.wipe();
  else if (!before && keep.get("owner") !== s.sub) keep.wipe();
  keep.set("owner", s.sub);
  keep.set("session", s);
  changed("session");
  return s;
}
// Signed out without asking (refresh token expired or revoked): the data stays for the same
// person's next sign-in, tied to "owner"; saveTokens wipes it if someone else signs in.
function drop() {
  localStorage.removeItem(P + "session");
  changed("session");
}

// ---------------------------------------------------------------- API client
export class ApiError extends Error {
  constructor(status, problem, stepUp) {
    super((problem && problem.title) || t("genericError"));
    this.status = status;
    this.slug = ((problem && problem.type) || "").split("/").pop();
    this.detail = problem && problem.detail;
    this.stepUp = stepUp || null;
  }
}
export class Offline extends Error {}
export class SignedOut extends Error {}

export const newKey = () => crypto.randomUUID();

async function send(path, method, body, key, token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Every POST carries a key; a retry of the same action reuses it, so the server answers
  // the retry with the first answer instead of acting twice.
  if (method !== "GET") headers["Idempotency-Key"] = key || newKey();
  try {
    return await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new Offline();
  }
}

async function problem(response, stepUp) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the generic message
  }
  return new ApiError(response.status, body, stepUp);
}

// Sign-in calls and public reads: no token.
export async function post(path, body) {
  const r = await send(path, "POST", body);
  if (!r.ok) throw await problem(r);
  return r.status === 204 ? null : r.json();
}
export async function getPublic(path, asText) {
  const r = await send(path, "GET");
  if (!r.ok) throw await problem(r);
  return asText ? r.text() : r.json();
}

// Refresh tokens rotate and a reused one revokes the whole sign-in, so only one refresh may
// be in flight: one promise per tab, and a Web Lock across tabs. Inside the lock we look
// again: if another tab already rotated, its new tokens are used as they are.
let refreshing = null;
export function refresh(failedAccess) {
  const run = async () => {
    const s = session();
    if (!s) throw new SignedOut();
    if (s.access !== failedAccess && s.exp - Date.now() > 15000) return s;
    const r = await send("/auth/refresh", "POST", { refresh_token: s.refresh });
    if (r.status === 400 || r.status === 401) {
      drop();
      throw new SignedOut();
    }
    if (!r.ok) throw await problem(r);
    return saveTokens(await r.json());
  };
  refreshing ??= (navigator.locks ? navigator.locks.request("cc-refresh", run) : run()).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

function stepUpOf(response) {
  const how = response.headers.get("WWW-Authenticate") || "";
  if (!how.includes("insufficient_user_authentication")) return null;
  return (how.match(/acr_values="([^"]+)"/) || [])[1] || "high";
}

export async function api(path, { method = "GET", body, key, raw } = {}) {
  let s = session();
  if (!s) throw new SignedOut();
  if (s.exp - Date.now() < 15000) s = await refresh(s.access);
  if (method !== "GET") key ||= newKey();
  let r = await send(path, method, body, key, s.access);
  for (let again = true; r.status === 401; again = false) {
    const stepUp = stepUpOf(r);
    if (stepUp) throw await problem(r, stepUp);
    if (!again) {
      drop();
      throw new SignedOut();
    }
    s = await refresh(s.access);
    r = await send(path, method, body, key, s.access);
  }
  if (!r.ok) throw await problem(r);
  if (raw) return r;
  return r.status === 204 ? null : r.json();
}

export async function logout() {
  const s = session();
  keep.wipe();
  changed("session");
  if (s) await send("/auth/logout", "POST", { refresh_token: s.refresh }).catch(() => {});
}

// ---------------------------------------------------------------- local copy and sync
export const net = { offline: !navigator.onLine, at: keep.get("syncedAt") };
export function offlineBanner() {
  if (!net.offline) return null;
  return h("p", { class: "box warn" }, icon("⚠"), " ",
    net.at ? t("offline", { when: fmtTime(new Date(net.at).toISOString()) }) : t("offlineShort"));
}
export const cached = (name) => keep.get("d." + name);
const store = (name, value) => {
  keep.set("d." + name, value);
  changed(name);
  return value;
};
// A list as the server sent it, a page {items: [...]}, or a synced copy {items: {id: item}}.
export function itemsOf(v) {
  if (Array.isArray(v)) return v;
  const items = v && v.items;
  return Array.isArray(items) ? items : Object.values(items || {});
}

// The ledger answers 503 until its first checkpoint exists (a fresh server): the phone keeps
// the copy it has, without alarming anybody.
async function tolerant(name, work) {
  try {
    return await work();
  } catch (e) {
    if (e.status === 503) return cached(name);
    throw e;
  }
}

export const fetchInto = (name, path) => tolerant(name, async () => store(name, await api(path)));

// Delta sync: keep the cursor, ask only for what changed since, apply items and deletions.
// Without a cursor (first time, or the server forgot it) the answer replaces the copy.
const idOf = (item) => item.id || item.consent_id;
async function delta(name, path) {
  let copy = cached(name) || { items: {}, cursor: null };
  for (let page = 0; page < 50; page++) {
    const since = copy.cursor;
    let answer;
    try {
      answer = await api(path + (since ? "?since=" + encodeURIComponent(since) : ""));
    } catch (e) {
      if (e.slug === "invalid-cursor" && since) {
        copy = { items: {}, cursor: null };
        continue;
      }
      throw e;
    }
    if (!since) copy.items = {};
    for (const item of answer.items) copy.items[idOf(item)] = item;
    for (const id of answer.deleted) delete copy.items[id];
    copy.cursor = answer.next_cursor;
    if (!answer.has_more) break;
  }
  return store(name, copy);
}

// Events per activity page: each carries its leaf and proof, so 2G pays per event.
export const PAGE = 10;

export const sync = {
  me: () => fetchInto("me", "/api/v1/me"),
  summary: () => fetchInto("summary", "/api/v1/me/summary"),
  procedures: () => delta("procedures", "/api/v1/me/procedures"),
  records: () => delta("records", "/api/v1/me/records"),
  requests: () => fetchInto("requests", "/api/v1/me/consent-requests"),
  consents: () => delta("consents", "/api/v1/me/consents"),
  activity: () => fetchInto("activity", "/api/v1/me/activity?limit=" + PAGE),
  // The dashboard shows three events: their proofs are not worth 2G bytes there.
  recent: () => fetchInto("recent", "/api/v1/me/activity?limit=3"),
  // Public: which agencies may ask for what (for granting a permission from scratch).
  directory: () => fetchInto("directory", "/api/v1/directory"),
};

// Bring several parts up to date at once; being offline is a state, not an error.
export async function refreshData(names) {
  const results = await Promise.allSettled(names.map((n) => sync[n]()));
  const errors = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  if (errors.some((e) => e instanceof SignedOut)) throw new SignedOut();
  const offline = errors.some((e) => e instanceof Offline);
  if (!offline && errors.length === 0) {
    net.at = Date.now();
    keep.set("syncedAt", net.at);
  }
  if (offline !== net.offline) {
    net.offline = offline;
    changed("net");
  }
  if (!offline) flush();
  return errors.find((e) => !(e instanceof Offline)) || null;
}

// Agency and category names, from whatever the phone already knows (the public directory,
// the folder, consents); the code itself as a last resort.
const directory = () => cached("directory") || { agencies: [], categories: [] };
export function agencyName(id) {
  const listed = directory().agencies.find((a) => a.id === id);
  if (listed) return listed.name;
  for (const name of ["procedures", "records"]) {
    for (const item of itemsOf(cached(name))) if (item.agency === id) return item.agency_name;
  }
  for (const c of [...itemsOf(cached("consents")), ...itemsOf(cached("requests"))]) {
    if ((c.data_consumer || c.consumer) === id && c.consumer_name) return c.consumer_name;
  }
  return id ? String(id).toUpperCase() : "";
}
// "Acta de nacimiento" inside a sentence is "acta de nacimiento"; "SAT" stays "SAT".
export const inSentence = (name) => (name && !/^.[A-Z]/.test(name) ? name[0].toLowerCase() + name.slice(1) : name);
// "Servicio de Administración Tributaria (SAT)" → "SAT": short enough for a sentence.
export const shortName = (name) => ((name || "").match(/\(([^)]+)\)\s*$/) || [])[1] || name;
export function categoryName(code) {
  const listed = directory().categories.find((c) => c.code === code);
  if (listed) return listed.name;
  for (const item of itemsOf(cached("records"))) if (item.category === code) return item.category_name;
  for (const c of [...itemsOf(cached("consents")), ...itemsOf(cached("requests"))]) {
    const at = (c.categories || []).indexOf(code);
    if (at >= 0 && c.category_names && c.category_names[at]) return c.category_names[at];
  }
  return humanize(code);
}
// A purpose code in words: the catalogue's, else the code with spaces.
export function purposeName(code) {
  const key = "purpose." + code;
  const word = t(key);
  return word === key ? humanize(code) : word;
}

// ---------------------------------------------------------------- offline queue
// Actions taken without signal wait here, with the Idempotency-Key of their first attempt,
// and go out in order when the network returns (so a lost answer is never a double action).
export const queue = () => keep.get("queue") || [];
function saveQueue(items) {
  keep.set("queue", items);
  changed("queue");
}
function enqueue(action) {
  const items = queue();
  if (!items.some((x) => x.key === action.key)) items.push(action);
  saveQueue(items);
}
const forget = (key) => saveQueue(queue().filter((x) => x.key !== key));

// Send now, or keep for later when there is no signal; resolves {result} or {queued: true}.
export async function act(action) {
  action.key ||= newKey();
  action.sub = session() && session().sub;
  if (!navigator.onLine) {
    enqueue(action);
    return { queued: true };
  }
  try {
    const result = await api(action.path, { method: "POST", body: action.body, key: action.key });
    forget(action.key);
    return { result };
  } catch (e) {
    if (e instanceof Offline) {
      enqueue(action);
      return { queued: true };
    }
    throw e;
  }
}

let flushing = null;
export function flush() {
  flushing ??= drain().finally(() => (flushing = null));
  return flushing;
}
async function drain() {
  let sent = 0;
  for (const item of queue()) {
    const s = session();
    if (!s || item.sub !== s.sub) continue;
    try {
      await api(item.path, { method: "POST", body: item.body, key: item.key });
      forget(item.key);
      sent++;
      say(t("done", { what: item.label }));
    } catch (e) {
      if (e instanceof Offline || e instanceof SignedOut) break;
      if (e.stepUp) {
        saveQueue(queue().map((x) => (x.key === item.key ? { ...x, stepUp: e.stepUp } : x)));
        continue;
      }
      // Busy or failing server: keep it, try later. Anything else is final: tell the person.
      if (e.status >= 500 || e.status === 409 || e.status === 429) break;
      forget(item.key);
      say(t("failed", { what: item.label, why: e.message }), true);
    }
  }
  if (sent) changed("sent");
  return sent;
}
