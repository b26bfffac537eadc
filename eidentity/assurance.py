"""Assurance levels (eIDAS names) and the step-up rule between them."""

from __future__ import annotations

from enum import Enum


class AssuranceLevel(str, Enum):
    """How sure we are that the bearer is the citizen: carried in tokens as ``acr``."""

    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def satisfies(self, required: AssuranceLevel) -> bool:
        """A session may act when its level is at least the level the action requires."""
        return self.rank >= required.rank


_RANK = {AssuranceLevel.LOW: 1, AssuranceLevel.SUBSTANTIAL: 2, AssuranceLevel.HIGH: 3}

#: RFC 8176 authentication method references for our two sign-in methods.
AMR_OTP_SMS = ("otp", "sms")
AMR_EFIRMA = ("swk", "pop")


def step_up_challenge(required: AssuranceLevel) -> str:
    """``WWW-Authenticate`` value per RFC 9470 (OAuth 2.0 step-up authentication)."""
    return (
        'Bearer error="insufficient_user_authentication", '
        f'error_description="Se requiere nivel {required.value}", acr_values="{required.value}"'
    )
