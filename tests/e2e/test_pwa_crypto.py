"""The phone's own cryptography, run in Chromium and checked against independent references:
3DES against FIPS known answers and ``cryptography``, PBES2 keys in both SAT's and modern
(AES) flavours, RFC 9162 inclusion and consistency proofs against ``ledger.merkle`` and the
public vectors, and C2SP checkpoint signatures against ``ledger.note``. (The answer without
Ed25519 is tested end to end in ``test_pwa_activity.py``.)"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.padding import PKCS7

from eidentity.devca.satkey import encrypt_private_key
from ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
)
from ledger.note import Checkpoint, sign_checkpoint
from pwa.assets import AssetTable
from tests.e2e.pwa_support import Phone, assets, b64, browser, phone, pwa_server
from tests.paths import FIXTURES

pytestmark = pytest.mark.e2e
__all__ = ["assets", "browser", "phone", "pwa_server"]  # fixtures used below


@pytest.fixture
def lab(phone: Phone, assets: AssetTable) -> Any:
    """A page on the app's origin (a secure context, so WebCrypto exists) and a way to call
    exported functions of its modules."""
    phone.open("/")
    phone.page.wait_for_selector("#curp")

    def call(module: str, body: str, arg: Any = None) -> Any:
        return phone.page.evaluate(
            "async ([url, arg]) => { const m = await import(url);"
            " const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));"
            " const hex = (a) => [...a].map((x) => x.toString(16).padStart(2, '0')).join('');"
            f" {body} }}",
            [assets.url(module), arg],
        )

    return call


def _des3_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = PKCS7(64).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def test_3des_matches_fips_known_answer_and_cryptography(lab: Any) -> None:
    # FIPS 46 worked example: key 133457799BBCDFF1, 0123456789ABCDEF → 85E813540F0AB405.
    # With K1 = K2 = K3, EDE is single DES; with a zero IV, CBC's first block is ECB.
    key = bytes.fromhex("133457799BBCDFF1") * 3
    sealed = _des3_cbc(key, bytes(8), bytes.fromhex("0123456789ABCDEF"))
    assert sealed[:8].hex().upper() == "85E813540F0AB405"
    cases = [(key, bytes(8), sealed)]
    for size in (1, 7, 8, 9, 1234):
        k, iv, data = os.urandom(24), os.urandom(8), os.urandom(size)
        cases.append((k, iv, _des3_cbc(k, iv, data)))
    plain = lab(
        "efirma.js",
        "return arg.map(([k, iv, c]) => hex(m.des3CbcDecrypt(b64(k), b64(iv), b64(c))));",
        [[b64(k), b64(iv), b64(c)] for k, iv, c in cases],
    )
    expected = ["0123456789abcdef"]
    for k, iv, c in cases[1:]:
        decryptor = Cipher(TripleDES(k), modes.CBC(iv)).decryptor()
        padded = decryptor.update(c) + decryptor.finalize()
        unpadder = PKCS7(64).unpadder()
        expected.append((unpadder.update(padded) + unpadder.finalize()).hex())
    assert plain == expected


@pytest.mark.parametrize("flavour", ["sat-3des", "aes-256"])
def test_encrypted_keys_open_and_sign_in_the_browser(lab: Any, flavour: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if flavour == "sat-3des":
        sealed = encrypt_private_key(private, "contraseña segura")
    else:  # what OpenSSL and cryptography write today: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC
        sealed = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption("contraseña segura".encode()),
        )
    result = lab(
        "efirma.js",
        "const key = await m.openKey(b64(arg.key), arg.password);"
        " const data = new TextEncoder().encode('hola');"
        " const sig = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', key, data);"
        " let wrong = null;"
        " try { await m.openKey(b64(arg.key), 'otra'); } catch (e) { wrong = e.message; }"
        " const text = btoa(String.fromCharCode(...new Uint8Array(sig)));"
        " return {sig: text, wrong, extractable: key.extractable};",
        {"key": b64(sealed), "password": "contraseña segura"},
    )
    private.public_key().verify(
        base64.b64decode(result["sig"]), b"hola", padding.PKCS1v15(), hashes.SHA256()
    )
    assert result["extractable"] is False  # the opened key can sign, never be read out
    assert result["wrong"] == "La contraseña no abre esta llave. Revísala e intenta de nuevo."


def _tree(size: int) -> tuple[list[bytes], list[bytes]]:
    leaves = [f"evento {i}".encode() for i in range(size)]
    return leaves, [leaf_hash(leaf) for leaf in leaves]


def _getter(hashes_: list[bytes]) -> Any:
    return lambda level, index: root_from_leaf_hashes(
        hashes_[index << level : (index + 1) << level]
    )


def test_inclusion_proofs_agree_with_ledger_merkle(lab: Any) -> None:
    cases = []
    for size in range(1, 18):
        leaves, hashes_ = _tree(size)
        root = root_from_leaf_hashes(hashes_)
        for index in range(size):
            proof = inclusion_proof(index, size, _getter(hashes_))
            cases.append([index, size, b64(leaves[index]), [b64(p) for p in proof], b64(root)])
    results = lab(
        "activity.js",
        "const out = []; for (const [i, n, leaf, path, root] of arg) {"
        " const r = await m.rootFromInclusion(i, n, await m.leafHash(b64(leaf)), path.map(b64));"
        " out.push(btoa(String.fromCharCode(...r)) === root); } return out;",
        cases,
    )
    assert len(results) == 153 and all(results)


def test_rfc6962_public_vector(lab: Any) -> None:
    vectors = json.loads((FIXTURES / "rfc6962-vectors.json").read_text())
    named = vectors["named_hashes"]
    path = [
        b64(bytes.fromhex(named[n])) for n in vectors["proofs"]["inclusion of leaf 5 in size 8"]
    ]
    root = lab(
        "activity.js",
        "const hash = await m.leafHash(b64(arg.leaf));"
        " return hex(await m.rootFromInclusion(5, 8, hash, arg.path.map(b64)));",
        {"leaf": b64(bytes.fromhex(vectors["leaves_hex"][5])), "path": path},
    )
    assert root == vectors["roots_by_size"]["8"]


CONSISTENT = (
    "const out = []; for (const [a, b, ra, rb, path] of arg) {"
    " out.push(await m.verifyConsistency(a, b, b64(ra), b64(rb), path.map(b64))); } return out;"
)


def test_consistency_proofs_agree_with_ledger_merkle(lab: Any) -> None:
    _, hashes_ = _tree(17)
    roots = {n: root_from_leaf_hashes(hashes_[:n]) for n in range(1, 18)}
    cases: list[list[Any]] = []
    expected: list[bool] = []
    for second in range(1, 18):
        getter = _getter(hashes_[:second])
        for first in range(1, second + 1):
            proof = consistency_proof(first, second, getter)
            head = [first, second, b64(roots[first]), b64(roots[second])]
            path = [b64(p) for p in proof]
            cases.append([*head, path])
            expected.append(True)
            assert verify_consistency(first, second, roots[first], roots[second], proof)
            if proof:  # one flipped bit anywhere, a dropped hash, another first root: refused
                flipped = bytearray(proof[-1])
                flipped[7] ^= 0x40
                cases.append([*head, [*path[:-1], b64(bytes(flipped))]])
                cases.append([*head, path[:-1]])
                expected += [False, False]
            if first < second:
                cases.append([first, second, b64(roots[second]), b64(roots[second]), path])
                expected.append(False)
    assert lab("activity.js", CONSISTENT, cases) == expected
    assert len(expected) > 400


def test_rfc6962_consistency_vectors(lab: Any) -> None:
    vectors = json.loads((FIXTURES / "rfc6962-vectors.json").read_text())
    named, roots = vectors["named_hashes"], vectors["roots_by_size"]
    cases = []
    for name, (first, second) in (("consistency 6 -> 8", (6, 8)), ("consistency 2 -> 5", (2, 5))):
        path = [b64(bytes.fromhex(named[n])) for n in vectors["proofs"][name]]
        first_root, second_root = (b64(bytes.fromhex(roots[str(n)])) for n in (first, second))
        cases += [[first, second, first_root, second_root, path]]
        cases += [[first, second, second_root, first_root, path]]
    assert lab("activity.js", CONSISTENT, cases) == [True, False, True, False]


def _signed_log(
    size: int = 11,
) -> tuple[dict[str, Any], str, list[dict[str, Any]], Ed25519PrivateKey]:
    origin = "127.0.0.1/carpeta-ledger"
    leaves, hashes_ = _tree(size)
    secret = Ed25519PrivateKey.generate()
    raw = secret.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    note = sign_checkpoint(Checkpoint(origin, size, root_from_leaf_hashes(hashes_)), origin, secret)
    key = {"origin": origin, "key_name": origin, "public_key": b64(raw)}
    items = [
        {
            "leaf_index": i,
            "tree_size": size,
            "leaf": b64(leaves[i]),
            "inclusion": [b64(p) for p in inclusion_proof(i, size, _getter(hashes_))],
        }
        for i in range(size)
    ]
    return key, note, items, secret


CHECK = (
    "const log = await m.openCheckpoint(arg.note, arg.key);"
    " const items = []; for (const item of arg.items) items.push(await m.checkItem(item, log));"
    " return {status: log.status, size: log.size, items};"
)


def test_checkpoint_and_proofs_verify_on_the_phone(lab: Any) -> None:
    key, note, items, _ = _signed_log()
    result = lab("activity.js", CHECK, {"note": note, "key": key, "items": items})
    assert result == {"status": "verified", "size": 11, "items": ["verified"] * 11}


def test_tampering_is_shown_never_hidden(lab: Any) -> None:
    key, note, items, _ = _signed_log()
    body, _, signature = note.partition("\n\n")
    origin, _size, root = body.split("\n")
    forged_size = f"{origin}\n12\n{root}\n\n{signature}"
    assert (
        lab("activity.js", CHECK, {"note": forged_size, "key": key, "items": items[:1]})["status"]
        == "bad"
    )

    other_key = {
        **key,
        "public_key": b64(
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ),
    }
    assert (
        lab("activity.js", CHECK, {"note": note, "key": other_key, "items": []})["status"] == "bad"
    )

    wrong_leaf = [{**items[3], "leaf": b64(b"otro evento")}]
    wrong_path = [{**items[4], "inclusion": list(reversed(items[4]["inclusion"]))}]
    other_size = [{**items[5], "tree_size": 10}]
    result = lab(
        "activity.js",
        CHECK,
        {"note": note, "key": key, "items": wrong_leaf + wrong_path + other_size},
    )
    assert result["items"] == ["bad", "bad", "pending"]
