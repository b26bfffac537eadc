"""Identity errors that carry their own user-facing answer.

Each subclass names a stable problem ``slug`` (the tail of the RFC 9457 ``type``), an es-MX
``title`` a citizen can act on, and the HTTP status. The HTTP layer maps them without knowing
each one, so adding a refusal never needs a change there.
"""

from __future__ import annotations

from typing import ClassVar


class IdentityError(Exception):
    slug: ClassVar[str] = "identity-error"
    title: ClassVar[str] = "No pudimos confirmar tu identidad."
    status: ClassVar[int] = 400

    def __init__(self, detail: str | None = None, **extensions: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class InvalidCurp(IdentityError):
    slug = "curp-invalid"
    title = "La CURP no es válida."
    status = 422


class RateLimited(IdentityError):
    slug = "too-many-requests"
    title = "Hiciste demasiados intentos. Espera un momento y vuelve a intentar."
    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)
        self.headers = {"Retry-After": str(self.retry_after)}


class OtpInvalid(IdentityError):
    slug = "otp-invalid"
    title = "El código no es correcto."
    status = 401


class OtpExpired(IdentityError):
    slug = "otp-expired"
    title = "El código ya expiró o ya se usó. Pide uno nuevo."
    status = 401


class OtpLocked(IdentityError):
    slug = "otp-locked"
    title = "Se agotaron los intentos para este código. Pide uno nuevo."
    status = 401


class ChallengeUnknown(IdentityError):
    slug = "challenge-unknown"
    title = "El reto de firma no existe. Pide uno nuevo."
    status = 400


class ChallengeExpired(IdentityError):
    slug = "challenge-expired"
    title = "El reto de firma ya expiró. Pide uno nuevo."
    status = 400


class ChallengeUsed(IdentityError):
    slug = "challenge-used"
    title = "El reto de firma ya se usó. Pide uno nuevo."
    status = 400


class RefreshInvalid(IdentityError):
    slug = "refresh-invalid"
    title = "Tu sesión terminó. Vuelve a iniciar sesión."
    status = 401


class InsufficientAssurance(IdentityError):
    slug = "step-up-required"
    title = "Para esta acción necesitas confirmar tu identidad con un método más seguro."
    status = 401


class Unauthenticated(IdentityError):
    slug = "unauthenticated"
    title = "Necesitas iniciar sesión."
    status = 401
