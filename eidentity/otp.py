"""One-time codes: generation, keyed hashing and the rules a code must pass.

Pure functions: the service stores what these return and asks them for verdicts, so the rules
(6 digits, 5 minutes, single use, 5 tries) are tested without a database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

CODE_DIGITS = 6
LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_challenge_id() -> str:
    return secrets.token_urlsafe(18)


def code_hash(secret: bytes, challenge_id: str, code: str) -> str:
    """Keyed so that a stolen database does not reveal codes by brute force of 10⁶ values."""
    return hmac.new(secret, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def sms_text(code: str) -> str:
    """Short, es-MX, no personal data; the code is the only run of six digits."""
    return (
        f"Carpeta Ciudadana: tu código es {code}. Vence en 5 minutos. "
        "Nadie del gobierno te lo pedirá."
    )


@dataclass(frozen=True, slots=True)
class OtpState:
    expires_at: datetime
    attempts: int
    consumed: bool


class Verdict:
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"


def judge(state: OtpState, matches: bool, now: datetime) -> str:
    """Decide an attempt. Used and expired codes fail alike; the 6th try fails even if right."""
    if state.consumed or now >= state.expires_at:
        return Verdict.EXPIRED
    if state.attempts >= MAX_ATTEMPTS:
        return Verdict.LOCKED
    return Verdict.OK if matches else Verdict.WRONG
