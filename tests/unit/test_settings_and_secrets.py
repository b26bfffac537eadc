"""Configuration and secrets on disk."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from wallet.keystore import KeyStore
from wallet.logs import JsonFormatter, RedactingFilter, redact
from wallet.settings import Settings, SettingsError, describe_settings


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("./var")
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert s.resolved_database_url.endswith("/var/carpeta.db")
    assert s.sms_sink == "log"
    assert " " not in s.resolved_ledger_origin and "+" not in s.resolved_ledger_origin


def test_every_contract_variable_is_documented() -> None:
    names = {row[0] for row in describe_settings()}
    assert {
        "CARPETA_DATA_DIR",
        "CARPETA_DATABASE_URL",
        "CARPETA_PUBLIC_URL",
        "CARPETA_SMS_SINK",
        "CARPETA_EFIRMA_TRUST_ANCHORS",
        "CARPETA_EFIRMA_CRL",
        "CARPETA_EFIRMA_OCSP_URL",
        "CARPETA_LEDGER_ORIGIN",
    } <= names
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [n for n in names if n not in readme]
    assert not missing, f"README lacks {missing}"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CARPETA_ACCESS_TOKEN_TTL": "3600"}, "TTL"),
        ({"CARPETA_REQUESTS_PER_ADDRESS_PER_MINUTE": "10"}, "300"),
        ({"CARPETA_SMS_SINK": "carrier-pigeon"}, "SMS"),
        ({"CARPETA_PUBLIC_URL": "ftp://x"}, "PUBLIC_URL"),
        ({"CARPETA_MAX_BODY_BYTES": "mucho"}, "MAX_BODY"),
        ({"CARPETA_EFIRMA_OCSP_FAIL_OPEN": "quizá"}, "FAIL_OPEN"),
    ],
)
def test_unusable_settings_are_refused_naming_the_variable(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env(env)


def test_secrets_are_created_once_with_mode_0600(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    first = store.secret("pseudonym")
    assert store.secret("pseudonym") == first and len(first) == 32
    mode = stat.S_IMODE(os.stat(tmp_path / "keys" / "pseudonym.secret").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    key = store.ed25519("ledger")
    assert store.ed25519("ledger").public_key() == key.public_key()


def test_racing_workers_end_with_one_secret(tmp_path: Path) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(KeyStore(tmp_path / "keys").secret("shared"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["shared.secret"]


def test_signing_key_rotation_keeps_old_keys_until_retired(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    [first] = store.signing_keys()
    store.rotate_signing_key(now=2_000_000_000)
    keys = store.signing_keys()
    assert len(keys) == 2 and keys[0].private_key.public_key() == first.private_key.public_key()
    store.rotate_signing_key(now=2_000_000_100)
    assert store.retire_signing_keys(keep=2) == 1
    assert len(store.signing_keys()) == 2


@pytest.mark.parametrize(
    "secret",
    [
        "BAAI810809HJCRCS02",
        "baai810809hjcrcs02",
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "Bearer abc.def",
        "+525512345678",
        "55 1234 5678",
        "123456",
        "gq3Z8v_Kd0Lm2N5pQ7rS9tU1",
    ],
)
def test_redaction_scrubs_identifiers_codes_and_tokens(secret: str) -> None:
    assert secret not in redact(f"algo {secret} más")


def test_redacting_filter_covers_extras_and_exceptions() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "curp %s", ("BAAI810809HJCRCS02",), None
    )
    try:
        raise ValueError("bad 123456 for BAAI810809HJCRCS02")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    record.extra_field = {"phone": "+525512345678"}
    RedactingFilter().filter(record)
    line = JsonFormatter().format(record)
    for secret in ("BAAI810809HJCRCS02", "+525512345678", "123456"):
        assert secret not in line
    assert "ValueError" in line
