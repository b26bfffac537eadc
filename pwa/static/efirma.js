// e.firma sign-in, loaded only when chosen. SAT's .key is an encrypted PKCS#8 file (PBES2:
// PBKDF2-HMAC-SHA1 + des-ede3-cbc). WebCrypto derives the key but has no 3DES, so the small
// DES below decrypts; WebCrypto then imports the RSA key (not extractable) and signs the
// server's challenge. Only the certificate and the signature are sent: the .key file and the
// password never leave the phone.
import { Offline, button, field, h, hold, post, t } from "./core.js";

// ---------------------------------------------------------------- DER (just enough to read)
export function der(bytes, at = 0) {
  if (at + 2 > bytes.length) throw new Error("DER: truncated");
  const tag = bytes[at];
  let len = bytes[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i];
    start += n;
  }
  const end = start + len;
  if (end > bytes.length) throw new Error("DER: truncated");
  return {
    tag,
    end,
    content: () => bytes.subarray(start, end),
    whole: () => bytes.subarray(at, end),
    kids() {
      const out = [];
      for (let p = start; p < end; p = out[out.length - 1].end) out.push(der(bytes, p));
      return out;
    },
  };
}
function oid(node) {
  const b = node.content();
  const parts = [Math.floor(b[0] / 40), b[0] % 40];
  for (let i = 1, v = 0; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) parts.push(v), (v = 0);
  }
  return parts.join(".");
}
const int = (node) => node.content().reduce((n, x) => n * 256 + x, 0);

// ---------------------------------------------------------------- DES / 3DES (FIPS 46-3)
// Bit positions are 1-based, as printed in the standard. Bits are plain arrays of 0/1:
// slow in principle, but a .key is ~1.2 KB (150 blocks), done in milliseconds.
const IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7];
const FP = IP.map((_, i) => IP.indexOf(i + 1) + 1);
const E = [32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
  16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1];
const P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25];
const PC1 = [57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4];
const PC2 = [14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
// S1..S8, each 4 rows of 16 values, one hex digit per value.
const S = [
  "e4d12fb83a6c5907" + "0f74e2d1a6cb9538" + "41e8d62bfc973a50" + "fc8249175b3ea06d",
  "f18e6b34972dc05a" + "3d47f28ec01a69b5" + "0e7ba4d158c6932f" + "d8a13f42b67c05e9",
  "a09e63f51dc7b428" + "d709346a285ecbf1" + "d6498f30b12c5ae7" + "1ad069874fe3b52c",
  "7de3069a1285bc4f" + "d8b56f03472c1ae9" + "a690cb7df13e5284" + "3f06a1d8945bc72e",
  "2c417ab6853fd0e9" + "eb2c47d150fa3986" + "421bad78f9c5630e" + "b8c71e2d6f09a453",
  "c1af92680d34e75b" + "af427c9561de0b38" + "9ef528c3704a1db6" + "432c95fabe17608d",
  "4b2ef08d3c975a61" + "d0b7491ae35c2f86" + "14bdc37eaf680592" + "6bd814a7950fe23c",
  "d2846fb1a93e50c7" + "1fd8a374c56b0e92" + "7b419ce206adf358" + "21e74a8dfc90356b",
].map((box) => [...box].map((c) => parseInt(c, 16)));

const permute = (bits, table) => table.map((p) => bits[p - 1]);
function bitsOf(bytes) {
  const out = [];
  for (const b of bytes) for (let i = 7; i >= 0; i--) out.push((b >> i) & 1);
  return out;
}
function bytesOf(bits) {
  const out = new Uint8Array(bits.length / 8);
  bits.forEach((bit, i) => (out[i >> 3] |= bit << (7 - (i & 7))));
  return out;
}
function subkeys(key8) {
  const k = permute(bitsOf(key8), PC1);
  let c = k.slice(0, 28);
  let d = k.slice(28);
  return SHIFTS.map((s) => {
    c = c.slice(s).concat(c.slice(0, s));
    d = d.slice(s).concat(d.slice(0, s));
    return permute(c.concat(d), PC2);
  });
}
function desBlock(bits, keys) {
  const x = permute(bits, IP);
  let l = x.slice(0, 32);
  let r = x.slice(32);
  for (const k of keys) {
    const e = permute(r, E).map((b, i) => b ^ k[i]);
    const f = [];
    for (let s = 0; s < 8; s++) {
      const b = e.slice(s * 6, s * 6 + 6);
      const v = S[s][(b[0] * 2 + b[5]) * 16 + b[1] * 8 + b[2] * 4 + b[3] * 2 + b[4]];
      f.push((v >> 3) & 1, (v >> 2) & 1, (v >> 1) & 1, v & 1);
    }
    const next = permute(f, P).map((b, i) => b ^ l[i]);
    l = r;
    r = next;
  }
  return permute(r.concat(l), FP);
}

// des-ede3-cbc decryption with PKCS#7 padding removed: P = D_K1(E_K2(D_K3(C))) ⊕ previous C.
// A wrong key shows up as bad padding (or, rarely, later as bytes that are not a key).
export function des3CbcDecrypt(key24, iv, data) {
  if (key24.length !== 24 || iv.length !== 8 || data.length % 8 || !data.length) throw new Error("3DES: bad sizes");
  const [k1, k2, k3] = [0, 8, 16].map((o) => subkeys(key24.subarray(o, o + 8)));
  const d1 = [...k1].reverse();
  const d3 = [...k3].reverse();
  const out = new Uint8Array(data.length);
  let prev = iv;
  for (let o = 0; o < data.length; o += 8) {
    const block = data.subarray(o, o + 8);
    const plain = bytesOf(desBlock(desBlock(desBlock(bitsOf(block), d3), k2), d1));
    for (let i = 0; i < 8; i++) out[o + i] = plain[i] ^ prev[i];
    prev = block;
  }
  const pad = out[out.length - 1];
  if (pad < 1 || pad > 8 || out.subarray(out.length - pad).some((b) => b !== pad)) throw new BadPassword();
  return out.subarray(0, out.length - pad);
}

// ---------------------------------------------------------------- the encrypted .key
class EfirmaError extends Error {
  constructor(key) {
    super(t(key));
  }
}
class BadPassword extends EfirmaError {
  constructor() {
    super("efirmaBadPass");
  }
}

const PBES2 = "1.2.840.113549.1.5.13";
const PBKDF2 = "1.2.840.113549.1.5.12";
const PRF = { "1.2.840.113549.2.7": "SHA-1", "1.2.840.113549.2.9": "SHA-256", "1.2.840.113549.2.11": "SHA-512" };
const CIPHER = {
  "1.2.840.113549.3.7": { name: "3DES", size: 24 },
  "2.16.840.1.101.3.4.1.2": { name: "AES-CBC", size: 16 },
  "2.16.840.1.101.3.4.1.22": { name: "AES-CBC", size: 24 },
  "2.16.840.1.101.3.4.1.42": { name: "AES-CBC", size: 32 },
};
const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };

// PEM as well as DER, in case the files were converted.
function unwrap(bytes) {
  const text = new TextDecoder().decode(bytes.subarray(0, 64));
  if (!text.startsWith("-----BEGIN")) return bytes;
  const b64 = new TextDecoder().decode(bytes).replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier(PBES2 {kdf, cipher}), OCTET STRING }
export async function openKey(keyFile, password) {
  let salt, iterations, prf, size, cipher, iv, sealed;
  try {
    const [algorithm, data] = der(unwrap(keyFile)).kids();
    const [scheme, params] = algorithm.kids();
    const [kdf, encryption] = params.kids();
    const [kdfOid, kdfParams] = kdf.kids();
    if (oid(scheme) !== PBES2 || oid(kdfOid) !== PBKDF2) throw new Error("not PBES2/PBKDF2");
    const fields = kdfParams.kids();
    salt = fields[0].content();
    iterations = int(fields[1]);
    prf = "SHA-1";
    for (const extra of fields.slice(2)) {
      if (extra.tag === 0x02) size = int(extra);
      else if (extra.tag === 0x30) prf = PRF[oid(extra.kids()[0])];
    }
    const [cipherOid, ivNode] = encryption.kids();
    cipher = CIPHER[oid(cipherOid)];
    iv = ivNode.content();
    sealed = data.content();
    // A hostile file must not keep a phone busy for minutes.
    if (!prf || !cipher || iterations < 1 || iterations > 1000000) throw new Error("unsupported");
  } catch {
    throw new EfirmaError("efirmaBadKey");
  }
  const secret = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", salt, iterations, hash: prf }, secret, (size || cipher.size) * 8));
  let plain;
  if (cipher.name === "3DES") {
    plain = des3CbcDecrypt(bits, iv, sealed);
  } else {
    try {
      const aes = await crypto.subtle.importKey("raw", bits, "AES-CBC", false, ["decrypt"]);
      plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, aes, sealed));
    } catch {
      throw new BadPassword();
    }
  }
  try {
    // PrivateKeyInfo: a SEQUENCE filling the whole plaintext, starting with version 0.
    const info = der(plain);
    if (info.tag !== 0x30 || info.end !== plain.length || info.kids()[0].tag !== 0x02) throw new Error();
    return await crypto.subtle.importKey("pkcs8", plain, RSA, false, ["sign"]);
  } catch {
    throw new BadPassword();
  }
}

// TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, SPKI, …
function publicKeyInfo(cerFile) {
  try {
    const fields = der(der(unwrap(cerFile)).kids()[0].whole()).kids();
    return fields[(fields[0].tag === 0xa0 ? 1 : 0) + 5].whole();
  } catch {
    throw new EfirmaError("efirmaBadCer");
  }
}

// Sign the exact UTF-8 bytes of the challenge, then check the signature with the
// certificate's own public key: a .key from another certificate is caught here, in plain words.
export async function sign(key, cerFile, toSign) {
  const data = new TextEncoder().encode(toSign);
  const signature = new Uint8Array(await crypto.subtle.sign(RSA, key, data));
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey("spki", publicKeyInfo(cerFile), RSA, false, ["verify"]);
  } catch (e) {
    throw e instanceof EfirmaError ? e : new EfirmaError("efirmaBadCer");
  }
  if (!(await crypto.subtle.verify(RSA, publicKey, signature, data))) throw new EfirmaError("efirmaMismatch");
  return signature;
}

function toB64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
const read = async (file) => new Uint8Array(await file.arrayBuffer());

// ---------------------------------------------------------------- the form
export function efirmaForm(box, { onTokens, onCancel }) {
  hold.on = true;
  const cer = h("input", { type: "file", accept: ".cer,application/pkix-cert" });
  const key = h("input", { type: "file", accept: ".key" });
  const pass = h("input", { type: "password", autocomplete: "off" });
  const cerField = field("cer", t("cerLabel"), cer);
  const keyField = field("key", t("keyLabel"), key);
  const passField = field("pass", t("passLabel"), pass);
  const progress = h("p", { role: "status", class: "muted" });
  const go = button(t("efirmaGo"));
  const form = h("form", { novalidate: true }, h("p", null, t("efirmaIntro")), cerField, keyField, passField, go, progress,
    onCancel ? button(t("withSms"), onCancel, "secondary") : null);
  const fail = (where, message, input) => {
    where.fail(message);
    progress.textContent = "";
    input.focus();
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    [cerField, keyField, passField].forEach((f) => f.fail(""));
    if (!cer.files[0]) return fail(cerField, t("efirmaNeedFiles"), cer);
    if (!key.files[0]) return fail(keyField, t("efirmaNeedFiles"), key);
    if (!pass.value) return fail(passField, t("efirmaNeedPass"), pass);
    go.disabled = true;
    try {
      progress.textContent = t("efirmaOpening");
      const [cerFile, keyFile] = await Promise.all([read(cer.files[0]), read(key.files[0])]);
      let privateKey;
      try {
        privateKey = await openKey(keyFile, pass.value);
      } catch (e) {
        return fail(e instanceof BadPassword ? passField : keyField, e.message, e instanceof BadPassword ? pass : key);
      }
      pass.value = "";
      progress.textContent = t("efirmaSigning");
      const challenge = await post("/auth/efirma/challenge");
      let signature;
      try {
        signature = await sign(privateKey, cerFile, challenge.to_sign);
      } catch (e) {
        return fail(e.message === t("efirmaMismatch") ? keyField : cerField, e.message, cer);
      }
      progress.textContent = t("efirmaChecking");
      const tokens = await post("/auth/efirma/verify", {
        challenge_id: challenge.challenge_id,
        certificate: toB64(cerFile),
        signature: toB64(signature),
      });
      progress.textContent = "";
      hold.on = false;
      await onTokens(tokens);
    } catch (e) {
      fail(cerField, e instanceof Offline ? t("offlineShort") : [e.message, e.detail].filter(Boolean).join(" "), cer);
    } finally {
      go.disabled = false;
    }
  });
  box.replaceChildren(h("h2", null, t("efirmaTitle")), form);
}
