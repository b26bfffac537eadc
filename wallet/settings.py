"""Settings read once from ``CARPETA_*`` environment variables.

Every knob lives here, with its default, so that README's configuration table and the code
cannot drift apart: :func:`describe_settings` renders the table from the same definitions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A configuration value cannot be used; the message names the variable."""


def _env_field(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration. Build it with :meth:`from_env`; tests pass overrides."""

    data_dir: Path = _env_field(
        "CARPETA_DATA_DIR", Path("./var"), "Database (SQLite), generated keys and local state."
    )
    database_url: str = _env_field(
        "CARPETA_DATABASE_URL",
        "",
        "SQLAlchemy async URL. Empty: SQLite file `carpeta.db` in the data dir. "
        "Server mode: `postgresql+asyncpg://user:pass@host/db`.",
    )
    public_url: str = _env_field(
        "CARPETA_PUBLIC_URL",
        "http://127.0.0.1:8000",
        "Public origin. Token issuer, token-endpoint audience and e.firma challenge origin.",
    )
    sms_sink: str = _env_field(
        "CARPETA_SMS_SINK",
        "log",
        "`log` (masked, development), `file:PATH` (JSON lines) or an `https://` SMS webhook.",
    )
    efirma_trust_anchors: Path | None = _env_field(
        "CARPETA_EFIRMA_TRUST_ANCHORS",
        None,
        "PEM bundle of CAs whose e.firma certificates are accepted. Unset: e.firma is refused.",
    )
    efirma_crl: Path | None = _env_field(
        "CARPETA_EFIRMA_CRL", None, "DER or PEM CRL checked on every e.firma sign-in (optional)."
    )
    efirma_ocsp_url: str | None = _env_field(
        "CARPETA_EFIRMA_OCSP_URL", None, "OCSP responder asked on every e.firma sign-in (optional)."
    )
    efirma_ocsp_fail_open: bool = _env_field(
        "CARPETA_EFIRMA_OCSP_FAIL_OPEN",
        False,
        "Accept e.firma when the OCSP responder is unreachable (the evidence says so). "
        "Default: refuse (fail closed).",
    )
    ledger_origin: str = _env_field(
        "CARPETA_LEDGER_ORIGIN",
        "",
        "Checkpoint origin line and key name. Empty: derived from the public URL's host.",
    )
    keys_dir: Path | None = _env_field(
        "CARPETA_KEYS_DIR",
        None,
        "Where secrets live (JWT keys, ledger key, pseudonym and encryption secrets). "
        "Unset: `keys/` in the data dir, generated on first start with mode 0600.",
    )
    max_body_bytes: int = _env_field(
        "CARPETA_MAX_BODY_BYTES", 1_048_576, "Largest accepted request body, in bytes."
    )
    access_token_ttl: int = _env_field(
        "CARPETA_ACCESS_TOKEN_TTL", 600, "Access token lifetime in seconds (at most 600)."
    )
    refresh_token_ttl: int = _env_field(
        "CARPETA_REFRESH_TOKEN_TTL", 30 * 86400, "Refresh token lifetime in seconds."
    )
    otp_per_curp_per_hour: int = _env_field(
        "CARPETA_OTP_PER_CURP_PER_HOUR", 5, "Codes sent to one CURP per hour (the real guard)."
    )
    requests_per_address_per_minute: int = _env_field(
        "CARPETA_REQUESTS_PER_ADDRESS_PER_MINUTE",
        600,
        "Sign-in requests per client address per minute (a generous backstop: carriers put "
        "hundreds of phones behind one address; never set below 300).",
    )
    trusted_proxies: tuple[str, ...] = _env_field(
        "CARPETA_TRUSTED_PROXIES",
        (),
        "Comma-separated proxy addresses whose X-Forwarded-For is believed.",
    )
    log_level: str = _env_field("CARPETA_LOG_LEVEL", "INFO", "Python log level.")
    log_format: str = _env_field("CARPETA_LOG_FORMAT", "json", "`json` or `text`.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from the environment, then apply explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f.default)
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that would make the service unsafe or unusable."""
        if not 60 <= self.access_token_ttl <= 600:
            raise SettingsError("CARPETA_ACCESS_TOKEN_TTL debe estar entre 60 y 600 segundos.")
        if self.requests_per_address_per_minute < 300:
            raise SettingsError("CARPETA_REQUESTS_PER_ADDRESS_PER_MINUTE no puede ser menor a 300.")
        if not self.public_url.startswith(("http://", "https://")):
            raise SettingsError("CARPETA_PUBLIC_URL debe empezar con http:// o https://.")
        sink = self.sms_sink
        if not (sink == "log" or sink.startswith(("file:", "https://", "http://"))):
            raise SettingsError("CARPETA_SMS_SINK debe ser log, file:RUTA o una URL https://.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'carpeta.db').resolve()}"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def resolved_ledger_origin(self) -> str:
        if self.ledger_origin:
            return self.ledger_origin
        host = self.issuer.split("://", 1)[1]
        return f"{host}/carpeta-ledger"

    @property
    def uses_tls(self) -> bool:
        return self.public_url.startswith("https://")


def _convert(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "si", "sí", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} debe ser verdadero o falso (1/0).")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} debe ser un número entero.") from None
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(default, Path) or name in {
        "CARPETA_EFIRMA_TRUST_ANCHORS",
        "CARPETA_EFIRMA_CRL",
        "CARPETA_KEYS_DIR",
    }:
        return Path(raw)
    return raw


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows for the README and ``carpeta settings``."""
    rows = []
    for f in fields(Settings):
        default = f.default
        shown = "" if default in (None, "", ()) else str(default)
        rows.append((f.metadata["env"], shown, f.metadata["doc"]))
    return rows
