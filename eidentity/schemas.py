"""Request and response bodies of the sign-in API (explicit msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# A 4096-bit certificate in base64 is under 3 KB; SAT's are ~2 KB. 16 KB leaves room.
Base64Blob = Annotated[str, msgspec.Meta(min_length=1, max_length=16_384)]


class CurpStart(msgspec.Struct, forbid_unknown_fields=True):
    curp: ShortText


class OtpSent(msgspec.Struct):
    otp_id: str
    expires_at: datetime
    channel: str
    message: str


class CurpVerify(msgspec.Struct, forbid_unknown_fields=True):
    otp_id: ShortText
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class TokenResponse(msgspec.Struct, omit_defaults=True):
    """RFC 6749 §5.1 shape; ``acr`` tells the app which assurance the session reached."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    acr: str | None = None


class EfirmaChallengeOut(msgspec.Struct):
    challenge_id: str
    to_sign: str
    expires_at: datetime
    algorithm: str = "RS256"


class EfirmaVerify(msgspec.Struct, forbid_unknown_fields=True):
    challenge_id: ShortText
    certificate: Base64Blob
    signature: Base64Blob


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
