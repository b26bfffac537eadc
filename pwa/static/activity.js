// "Who used my data": each ledger event in plain words, and the phone's own checks:
// - inclusion: the event's proof (RFC 9162, SHA-256) leads to the root of a signed checkpoint;
// - signature: that checkpoint's Ed25519 signature (C2SP signed note) verifies with the log key;
// - continuity: the log only grew since the last checkpoint this phone verified (a consistency
//   proof, RFC 9162 §2.1.4.2), so nothing it showed before was removed or rewritten.
// Where the browser has no Ed25519 we say so; we never show "verified" for what we did not check.
import {
  ApiError, Offline, PAGE, agencyName, api, busy, button, cached, categoryName, changed, fmtTime, getPublic, h, heading,
  humanize, icon, inSentence, itemsOf, keep, muted, offlineBanner, purposeName, say, shortName, t,
} from "./core.js";

const enc = new TextEncoder();
export const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toB64 = (bytes) => btoa(String.fromCharCode(...bytes));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}
export const leafHash = (leaf) => sha256(Uint8Array.of(0), leaf);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);
// Halving by division, not shifts, so sizes past 2^31 stay exact.
const half = (n) => Math.floor(n / 2);
const odd = (n) => n % 2 === 1;

// RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
export async function rootFromInclusion(index, size, hash, path) {
  if (!(index < size)) throw new Error("leaf index outside the tree");
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of path) {
    if (sn === 0) throw new Error("proof too long");
    if (odd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      while (!odd(fn) && fn !== 0) (fn = half(fn)), (sn = half(sn));
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new Error("proof too short");
  return r;
}

// RFC 9162 §2.1.4.2: does the tree (second, secondRoot) extend (first, firstRoot)? Equal sizes
// need an empty proof and equal roots. Never throws: a malformed proof is simply false.
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  try {
    if (!(first > 0 && first <= second) || proof.some((p) => p.length !== 32)) return false;
    if (first === second) return proof.length === 0 && same(firstRoot, secondRoot);
    if (!proof.length) return false;
    let power = first;
    while (power % 2 === 0) power /= 2;
    // Step 2: when first is a power of two its root is a node of the second tree, not sent.
    const path = power === 1 ? [firstRoot, ...proof] : proof;
    let fn = first - 1;
    let sn = second - 1;
    while (odd(fn)) (fn = half(fn)), (sn = half(sn));
    let fr = path[0];
    let sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0) return false;
      if (odd(fn) || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        while (!odd(fn) && fn !== 0) (fn = half(fn)), (sn = half(sn));
      } else {
        sr = await nodeHash(sr, c);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return sn === 0 && same(fr, firstRoot) && same(sr, secondRoot);
  } catch {
    return false;
  }
}

// A C2SP signed note from the log key {origin, key_name, public_key}. The signature covers
// the text before the blank line, final newline included; its first 4 bytes are the key id
// SHA-256(key name || "\n" || 0x01 || public key)[:4].
export async function openCheckpoint(text, key) {
  const cut = text.indexOf("\n\n");
  if (cut < 0) return { status: "bad" };
  const body = text.slice(0, cut + 1);
  const [origin, sizeLine, rootLine] = body.split("\n");
  let root;
  let pub;
  try {
    root = fromB64(rootLine);
    pub = fromB64(key.public_key);
  } catch {
    return { status: "bad" };
  }
  const size = Number(sizeLine);
  if (origin !== key.origin || !/^(0|[1-9]\d*)$/.test(sizeLine) || root.length !== 32 || pub.length !== 32) return { status: "bad" };
  const id = (await sha256(enc.encode(key.key_name + "\n"), Uint8Array.of(1), pub)).slice(0, 4);
  let signature = null;
  for (const line of text.slice(cut + 2).split("\n")) {
    const m = line.match(/^\u2014 (\S+) (\S+)$/);
    if (!m || m[1] !== key.key_name) continue;
    const raw = fromB64(m[2]);
    if (raw.length === 68 && same(raw.slice(0, 4), id)) signature = raw.slice(4);
  }
  const found = { size, root, origin };
  if (!signature) return { ...found, status: "bad" };
  let verifier;
  try {
    verifier = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return { ...found, status: "unsupported" };
  }
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, verifier, signature, enc.encode(body));
  return { ...found, status: ok ? "verified" : "bad" };
}

// One event against a checkpoint: "verified", "unsupported" (proof fine, signature not
// checkable here), "bad", or "pending" (proved against another tree size than we hold).
export async function checkItem(item, log) {
  if (!log || !log.root) return "pending";
  if (item.tree_size !== log.size) return "pending";
  try {
    const path = (item.inclusion || item.hashes || []).map(fromB64);
    const root = await rootFromInclusion(item.leaf_index, item.tree_size, await leafHash(fromB64(item.leaf)), path);
    if (!same(root, log.root)) return "bad";
  } catch {
    return "bad";
  }
  return log.status === "verified" ? "verified" : log.status === "unsupported" ? "unsupported" : "bad";
}

// The log key and the last checkpoint this phone verified are public, not personal: they are
// kept after "Salir" (outside the cc. prefix). The key is pinned on first sight; a different
// key later is shown as an alarm, not silently accepted.
const pinned = (name) => JSON.parse(localStorage.getItem(name) || "null");
// Asked once per visit of the screen ("Ver más" reuses it).
const keyAsked = { visit: -1, answer: null };
function ledgerKey() {
  if (keyAsked.visit !== proofs.visit || !keyAsked.answer) {
    keyAsked.visit = proofs.visit;
    keyAsked.answer = askLedgerKey();
    keyAsked.answer.catch(() => (keyAsked.answer = null));
  }
  return keyAsked.answer;
}
async function askLedgerKey() {
  const before = pinned("ccl.key");
  let key;
  try {
    key = await getPublic("/.well-known/carpeta-ledger");
  } catch (e) {
    if (before) return before;
    throw e;
  }
  if (before && (before.public_key !== key.public_key || before.key_name !== key.key_name)) return { ...key, changed: true };
  localStorage.setItem("ccl.key", JSON.stringify(key));
  return key;
}

// One consistency check per pair of checkpoints, shared by overlapping runs.
const pairs = new Map();
async function consistent(a, b) {
  const pair = [a.size, toB64(a.root), b.size, toB64(b.root)].join();
  if (!pairs.has(pair)) {
    const check = getPublic("/ledger/proofs/consistency?first=" + a.size + "&second=" + b.size).then((proof) =>
      Array.isArray(proof.hashes) && proof.first === a.size && proof.second === b.size &&
      verifyConsistency(a.size, b.size, a.root, b.root, proof.hashes.map(fromB64)));
    pairs.set(pair, check);
    // Only a proven pair is remembered: a failure is asked again on the next visit.
    check.then((ok) => ok || pairs.delete(pair), () => pairs.delete(pair));
  }
  return pairs.get(pair);
}

// Continuity: the checkpoints in hand and the last one this phone verified, in size order,
// each pair proved consistent (equal sizes: equal roots). Only then does the largest become
// the new reference; after a failure the old one stays, so the alarm repeats until explained.
async function continuity(logs) {
  const ref = pinned("ccl.seen");
  const chain = [...logs];
  if (ref) chain.push({ size: ref.size, root: fromB64(ref.root) });
  chain.sort((a, b) => a.size - b.size);
  const top = chain[chain.length - 1];
  const result = (status) => ({ status, from: ref ? ref.size : null, to: top.size });
  for (let i = 1; i < chain.length; i++) {
    const [a, b] = [chain[i - 1], chain[i]];
    let ok = a.size === b.size && same(a.root, b.root);
    if (a.size !== b.size) {
      try {
        ok = await consistent(a, b);
      } catch (e) {
        if (e instanceof Offline || (e instanceof ApiError && e.status >= 500)) return result("unavailable");
        ok = false;
      }
    }
    if (!ok) return result("bad");
  }
  localStorage.setItem("ccl.seen", JSON.stringify({ size: top.size, root: toB64(top.root) }));
  return result(!ref ? "first" : ref.size === top.size ? "same" : "grew");
}

// ---------------------------------------------------------------- pages
// The first page is the saved copy (fresh on every visit); older pages ("Ver más") are kept in
// memory while the first page stays the same, each with the checkpoint it was proved against.
const older = { base: null, items: [], notes: [], next: null, loaded: false };
function pages() {
  const data = cached("activity");
  const first = itemsOf(data);
  const base = first.length ? first[0].leaf_index : -1;
  if (older.base !== base) Object.assign(older, { base, items: [], notes: [], next: null, loaded: false });
  const known = new Set(first.map((i) => i.leaf_index));
  return {
    items: [...first, ...older.items.filter((i) => !known.has(i.leaf_index))].sort(newestFirst),
    notes: [data && data.checkpoint, ...older.notes].filter((n) => typeof n === "string"),
    next: older.loaded ? older.next : data && data.next_before,
  };
}

async function more(btn) {
  const { next, items } = pages();
  if (next == null) return;
  await busy(btn, async () => {
    try {
      const page = await api("/api/v1/me/activity?limit=" + PAGE + "&before=" + next);
      const held = new Set(items.map((i) => i.leaf_index));
      const fresh = page.items.filter((i) => !held.has(i.leaf_index));
      older.items.push(...fresh);
      older.notes.push(page.checkpoint);
      older.next = page.next_before;
      older.loaded = true;
      changed("proofs");
      say(t(fresh.length ? "moreShown" : "noMore", { n: fresh.length }));
      const first = fresh[0] && document.getElementById("ev-" + fresh[0].leaf_index);
      if (first) first.focus();
    } catch (e) {
      say(e instanceof Offline ? t("offlineShort") : e.message, true);
    }
  });
}

// ---------------------------------------------------------------- verification
const proofs = { seen: null, visit: 0, run: 0, log: null, chain: null, verdicts: new Map() };
// A verdict belongs to the exact bytes checked: a changed leaf or proof is checked again.
const mark = (item) => [item.leaf_index, item.tree_size, item.leaf, item.inclusion || item.hashes].join("/");
const WORST = ["bad", "unsupported", "verified"];

async function verifyAll() {
  const { items, notes } = pages();
  const seen = proofs.visit + "|" + items.map(mark).join() + "|" + notes.join("|");
  if (seen === proofs.seen) return;
  proofs.seen = seen;
  // Only the latest run may publish its verdicts (an older one could finish later).
  const run = ++proofs.run;
  const verdicts = new Map();
  let log;
  let chain = null;
  try {
    const key = await ledgerKey();
    if (!notes.length) {
      try {
        notes.push(await getPublic("/ledger/checkpoint", true));
        keep.set("d.checkpoint", notes[0]);
      } catch (e) {
        if (!keep.get("d.checkpoint")) throw e;
        notes.push(keep.get("d.checkpoint"));
      }
    }
    // Every checkpoint in hand must verify; two of one size must agree (else: a fork).
    const bySize = new Map();
    let status = "verified";
    for (const text of new Set(notes)) {
      const opened = key.changed ? { status: "bad" } : await openCheckpoint(text, key);
      const twin = bySize.get(opened.size);
      if (opened.size == null || (twin && !same(twin.root, opened.root))) opened.status = "bad";
      if (WORST.indexOf(opened.status) < WORST.indexOf(status)) status = opened.status;
      if (opened.size != null) bySize.set(opened.size, opened);
      log ||= opened;
    }
    log = { ...log, status };
    for (const item of items) verdicts.set(mark(item), await checkItem(item, bySize.get(item.tree_size)));
    if (status === "verified") chain = await continuity([...bySize.values()]);
  } catch (e) {
    log = { status: e instanceof Offline ? "offline" : "unavailable" };
  }
  if (run !== proofs.run) return;
  Object.assign(proofs, { log, chain, verdicts });
  changed("proofs");
}

// ---------------------------------------------------------------- words
function event(item) {
  try {
    return JSON.parse(new TextDecoder().decode(fromB64(item.leaf)));
  } catch {
    return {};
  }
}

// "El SAT consultó tu acta de nacimiento." and, when it applies, for what and under which law.
export function describe(item) {
  const ev = event(item);
  const type = ev.type || item.type || "";
  const actor = type.startsWith("record.") ? ev.provider || ev.consumer : ev.consumer || ev.provider;
  const who = shortName(actor === ev.consumer && item.consumer_name ? item.consumer_name : agencyName(actor));
  const cats = ev.categories || [];
  const what = cats.length ? cats.map((c) => inSentence(categoryName(c))).join(", ") : t("yourData");
  const key = "ev." + type;
  const sentence = t(t(key) === key ? "ev.other" : key, { who, what: t(key) === key ? humanize(type) : what });
  const purpose = ev.purpose && type.startsWith("data.") ? t("forPurpose", { why: purposeName(ev.purpose) }) : null;
  const law = ev.legal_basis && ev.legal_basis !== "consent" ? t("byLaw", { law: ev.legal_basis }) : null;
  return { sentence, purpose, law, at: ev.at || item.at };
}

const newestFirst = (a, b) => b.leaf_index - a.leaf_index;

export function recentActivity(n) {
  const data = cached("recent") || cached("activity");
  const items = itemsOf(data).sort(newestFirst).slice(0, n);
  if (!data) return muted(t("loading"));
  if (!items.length) return muted(t("noActivity"));
  return h("ul", { class: "list" }, items.map((item) => {
    const d = describe(item);
    return h("li", { class: "event" }, h("p", null, d.sentence), h("p", { class: "muted small" }, fmtTime(d.at)));
  }));
}

const LOG_WORDS = {
  verified: ["ok", "✔", "logVerified"],
  unsupported: ["warn", "?", "logUnsupported"],
  bad: ["bad", "⚠", "logBad"],
  offline: ["warn", "⚠", "offlineShort"],
  unavailable: ["warn", "⚠", "logUnavailable"],
};
const CHAIN_WORDS = {
  first: ["ok", "ℹ", "chainFirst"],
  same: ["ok", "✔", "chainSame"],
  grew: ["ok", "✔", "chainGrew"],
  bad: ["bad", "⚠", "chainBad"],
  unavailable: ["warn", "⚠", "chainUnavailable"],
};
const ITEM_WORDS = {
  verified: ["ok", "✔", "itemVerified"],
  unsupported: ["warn", "?", "itemUnsupported"],
  bad: ["bad", "⚠", "itemBad"],
  pending: ["muted", "…", "itemPending"],
};
const fmtSize = (n) => n.toLocaleString("es-MX");

export const activityScreen = {
  deps: ["activity", "proofs"],
  // Each visit checks again (a failed check is not retried on every repaint, only per visit).
  load: () => (proofs.visit++, ["activity"]),
  render() {
    const out = [heading(t("activityTitle")), h("p", null, t("activityIntro")), offlineBanner()];
    const data = cached("activity");
    if (!data) return [...out, muted(t("loading"))];
    verifyAll();
    const { log, chain } = proofs;
    if (!log) out.push(muted(t("loading")));
    else {
      const [cls, glyph, words] = LOG_WORDS[log.status];
      const line = chain && CHAIN_WORDS[chain.status];
      const box = line && line[0] !== "ok" && cls === "ok" ? line[0] : cls;
      out.push(h("div", { class: "box " + box, id: "log-status" },
        log.size != null ? h("p", null, t("logStatus", { size: fmtSize(log.size) })) : null,
        h("p", null, icon(glyph), " ", t(words)),
        line ? h("p", { id: "log-chain", "data-chain": chain.status }, icon(line[1]), " ",
          t(line[2], { from: chain.from == null ? "" : fmtSize(chain.from), to: fmtSize(chain.to) })) : null));
    }
    if (data.pending > 0) out.push(muted(t("logPending", { n: data.pending })));
    const { items, next } = pages();
    if (!items.length) out.push(muted(t("noActivity")));
    out.push(h("ul", { class: "list", id: "events" }, items.map((item) => {
      const d = describe(item);
      const verdict = proofs.verdicts.get(mark(item)) || "pending";
      const [cls, glyph, words] = ITEM_WORDS[verdict];
      return h("li", { class: "event", id: "ev-" + item.leaf_index, tabindex: "-1", "data-verdict": verdict },
        h("p", null, d.sentence), d.purpose && h("p", null, d.purpose), d.law && h("p", { class: "small" }, d.law),
        h("p", { class: "muted small" }, fmtTime(d.at)),
        h("p", { class: "mark " + cls }, icon(glyph), " ", t(words)));
    })));
    if (next != null) {
      const btn = button(t("more"), () => more(btn), "secondary");
      btn.id = "more";
      out.push(btn);
    } else if (items.length && older.loaded) out.push(muted(t("noMore")));
    return out;
  },
};
