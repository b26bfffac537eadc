// "Who used my data": each ledger event in plain words, and the phone's own check that it is
// in the public log: the inclusion proof (RFC 9162, SHA-256) must lead to the root of the
// signed checkpoint, and the checkpoint's Ed25519 signature (C2SP signed note) must verify.
// Where the browser has no Ed25519 we say so; we never show "verified" for what we did not check.
import {
  Offline, agencyName, cached, categoryName, changed, fmtTime, getPublic, h, has, heading, humanize, icon, inSentence,
  itemsOf, keep, muted, offlineBanner, shortName, t,
} from "./core.js";

const enc = new TextEncoder();
export const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}
export const leafHash = (leaf) => sha256(Uint8Array.of(0), leaf);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

// RFC 9162 §2.1.3.2: the root an inclusion proof leads to. Halving by division, not shifts,
// so indices past 2^31 stay exact.
export async function rootFromInclusion(index, size, hash, path) {
  if (!(index < size)) throw new Error("leaf index outside the tree");
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of path) {
    if (sn === 0) throw new Error("proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof too short");
  return r;
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

// The log key is pinned on first sight (kept even after "Salir": it is public, not personal);
// a different key later is shown as an alarm, not silently accepted.
async function ledgerKey() {
  const pinned = JSON.parse(localStorage.getItem("ccl.key") || "null");
  let key;
  try {
    key = await getPublic("/.well-known/carpeta-ledger");
  } catch (e) {
    if (pinned) return pinned;
    throw e;
  }
  if (pinned && (pinned.public_key !== key.public_key || pinned.key_name !== key.key_name)) return { ...key, changed: true };
  localStorage.setItem("ccl.key", JSON.stringify(key));
  return key;
}

const proofs = { seen: null, run: 0, log: null, verdicts: new Map() };
// A verdict belongs to the exact bytes checked: a changed leaf or proof is checked again.
const mark = (item) => [item.leaf_index, item.tree_size, item.leaf, item.inclusion || item.hashes].join("/");

async function verifyAll() {
  const data = cached("activity");
  const items = itemsOf(data);
  const seen = items.map(mark).join() + "|" + (data && data.checkpoint);
  if (seen === proofs.seen) return;
  proofs.seen = seen;
  // Only the latest run may publish its verdicts (an older one could finish later).
  const run = ++proofs.run;
  const verdicts = new Map();
  let log;
  try {
    const key = await ledgerKey();
    let text = data && typeof data.checkpoint === "string" ? data.checkpoint : null;
    if (!text) {
      try {
        text = await getPublic("/ledger/checkpoint", true);
        keep.set("d.checkpoint", text);
      } catch (e) {
        text = keep.get("d.checkpoint");
        if (!text) throw e;
      }
    }
    log = key.changed ? { status: "bad" } : await openCheckpoint(text, key);
    for (const item of items) verdicts.set(mark(item), await checkItem(item, log));
  } catch (e) {
    log = { status: e instanceof Offline ? "offline" : "unavailable" };
    proofs.seen = null;
  }
  if (run !== proofs.run) return;
  proofs.log = log;
  proofs.verdicts = verdicts;
  changed("proofs");
}

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
  const who = shortName(item.consumer_name || agencyName(actor));
  const cats = ev.categories || [];
  const what = cats.length ? cats.map((c) => inSentence(categoryName(c))).join(", ") : t("yourData");
  const key = "ev." + type;
  const sentence = t(t(key) === key ? "ev.other" : key, { who, what: t(key) === key ? humanize(type) : what });
  const purpose = ev.purpose && type.startsWith("data.") ? t("forPurpose", { why: item.purpose_text || humanize(ev.purpose) }) : null;
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
const ITEM_WORDS = {
  verified: ["ok", "✔", "itemVerified"],
  unsupported: ["warn", "?", "itemUnsupported"],
  bad: ["bad", "⚠", "itemBad"],
  pending: ["muted", "…", "itemPending"],
};

export const activityScreen = {
  deps: ["activity", "proofs"],
  load: () => ["activity"],
  render() {
    const out = [heading(t("activityTitle")), h("p", null, t("activityIntro")), offlineBanner()];
    if (!has("activity")) return [...out, muted(t("notFound"))];
    const data = cached("activity");
    if (!data) return [...out, muted(t("loading"))];
    verifyAll();
    const log = proofs.log;
    if (!log) out.push(muted(t("loading")));
    else {
      const [cls, glyph, words] = LOG_WORDS[log.status];
      out.push(h("div", { class: "box " + cls, id: "log-status" },
        log.size != null ? h("p", null, t("logStatus", { size: log.size.toLocaleString("es-MX") })) : null,
        h("p", null, icon(glyph), " ", t(words))));
    }
    if (data.pending > 0) out.push(muted(t("logPending", { n: data.pending })));
    const items = itemsOf(data).sort(newestFirst);
    if (!items.length) out.push(muted(t("noActivity")));
    out.push(h("ul", { class: "list", id: "events" }, items.map((item) => {
      const d = describe(item);
      const verdict = proofs.verdicts.get(mark(item)) || "pending";
      const [cls, glyph, words] = ITEM_WORDS[verdict];
      return h("li", { class: "event", "data-verdict": verdict },
        h("p", null, d.sentence), d.purpose && h("p", null, d.purpose), d.law && h("p", { class: "small" }, d.law),
        h("p", { class: "muted small" }, fmtTime(d.at)),
        h("p", { class: "mark " + cls }, icon(glyph), " ", t(words)));
    })));
    return out;
  },
};
