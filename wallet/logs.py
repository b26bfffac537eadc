"""Structured logs that cannot carry a CURP, phone number, OTP or token.

We never pass those values to a logger in the first place; the redacting filter is the second
line of defence, scrubbing anything shaped like one from the message and every extra field
(including what third-party libraries log) before a handler sees it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_PATTERNS = [
    # CURP (18 chars: 4 letters, 6 digits, H/M/X, 5 letters, 2 alphanumerics)
    re.compile(r"\b[A-ZÑ]{4}\d{6}[HMX][A-ZÑ]{5}[0-9A-Z]\d\b", re.IGNORECASE),
    # JWT / JWS compact serialisations
    re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),
    # Bearer credentials and long opaque tokens (refresh tokens, ids we hand out)
    re.compile(r"(?i)bearer\s+\S+"),
    re.compile(r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}"),
    # Phone numbers (8+ digits, optional +) and any lone run of exactly six digits (OTP)
    re.compile(r"\+?\d[\d\s-]{7,}\d"),
    re.compile(r"(?<!\d)\d{6}(?!\d)"),
]

_PLAIN = logging.Formatter()
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub("[redactado]", text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take logging down
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value))
        if record.exc_info:
            # Render now and scrub: the exception's message may quote user input.
            record.exc_text = redact(_PLAIN.formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install one redacting handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_carpeta", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._carpeta = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Our access log replaces uvicorn's, which would print query strings.
    logging.getLogger("uvicorn.access").disabled = True
    # Libraries that log request URLs or SQL parameters stay above DEBUG/INFO whatever our
    # level: webhook URLs may carry credentials, SQL parameters carry CURPs and codes.
    for name in ("httpx", "httpcore", "aiosqlite", "asyncpg", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.WARNING)
