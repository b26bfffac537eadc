"""Consent errors that carry their own user-facing answer.

Same shape as ``eidentity.errors.IdentityError`` (copied, not imported, so that ``consent``
stays independent): each class names a stable problem ``slug`` (the tail of the RFC 9457
``type``), an es-MX ``title`` a citizen or agency can act on, and the HTTP ``status``. The HTTP
layer maps them without knowing each one, so adding a refusal never needs a change there.
"""

from __future__ import annotations

from typing import ClassVar


class ConsentError(Exception):
    slug: ClassVar[str] = "consent-error"
    title: ClassVar[str] = "No pudimos procesar el consentimiento."
    status: ClassVar[int] = 400

    def __init__(self, detail: str | None = None, **extensions: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class ConsentInvalid(ConsentError, ValueError):
    """A consent value that breaks an invariant (bad dates, empty categories, a CURP as id…).

    Also a ``ValueError`` so that code validating plain values can catch it generically.
    """

    slug = "consent-invalid"
    title = "Los datos del consentimiento no son válidos."
    status = 422


class ConsentTransitionError(ConsentError):
    """The consent is not in a state from which the requested change is allowed."""

    slug = "consent-transition-not-allowed"
    title = "Este consentimiento no admite ese cambio en su estado actual."
    status = 409


class ConsentLapsed(ConsentTransitionError):
    """The consent (or the pending request) ran out of time: it must be expired, not changed."""

    slug = "consent-expired"
    title = "Este consentimiento ya venció."
    status = 409


class ConsentActorNotAllowed(ConsentTransitionError):
    """The change is legal for the state but not for who asked (an agency cannot approve)."""

    slug = "consent-actor-not-allowed"
    title = "No puedes hacer este cambio en este consentimiento."
    status = 403


class ConsentUseRefused(ConsentError):
    """A release under this consent is not allowed now; ``reason`` is a decision reason code."""

    slug = "consent-required"
    title = "Se necesita un consentimiento vigente para entregar estos datos."
    status = 403

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class ReceiptInvalid(ConsentError):
    slug = "receipt-invalid"
    title = "El comprobante de consentimiento no es válido."
    status = 400
