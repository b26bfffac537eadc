"""Sign-in flows: CURP + SMS code (assurance ``low``) and e.firma (assurance ``high``).

Each public method is one unit of work: it commits what must survive (a spent attempt, a used
challenge) even when it then refuses, because a refusal that forgets the attempt would let an
attacker retry forever.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eidentity import otp
from eidentity.assurance import AMR_EFIRMA, AMR_OTP_SMS, AssuranceLevel
from eidentity.citizens import CitizenRegistry
from eidentity.curp import CurpError, parse_curp
from eidentity.efirma.verify import EfirmaVerifier
from eidentity.errors import (
    ChallengeExpired,
    ChallengeUnknown,
    ChallengeUsed,
    IdentityError,
    InvalidCurp,
    OtpExpired,
    OtpInvalid,
    OtpLocked,
)
from eidentity.models import EfirmaChallenge, EfirmaSignIn, OtpChallenge
from eidentity.ratelimit import Limit, RateLimiter
from eidentity.sessions import SessionService, TokenPair
from eidentity.sms import SmsSender

EFIRMA_CHALLENGE_LIFETIME = timedelta(minutes=5)


class EfirmaUnavailable(IdentityError):
    slug = "efirma-unavailable"
    title = "El inicio de sesión con e.firma no está disponible en este momento."
    status = 503


class EfirmaInputInvalid(IdentityError):
    slug = "certificate-unparseable"
    title = "El certificado o la firma no tienen un formato válido."
    status = 400


class EfirmaCurpInvalid(IdentityError):
    slug = "certificate-curp-invalid"
    title = "El certificado no contiene una CURP válida."
    status = 401


@dataclass(frozen=True, slots=True)
class OtpStarted:
    otp_id: str
    expires_at: datetime
    #: Set only for enrolled citizens; the caller sends it after answering, so that the
    #: answer and its timing are the same whether or not the CURP is enrolled.
    delivery: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class EfirmaChallengeIssued:
    challenge_id: str
    to_sign: str
    expires_at: datetime


def _curp_or_problem(raw: str) -> str:
    try:
        return parse_curp(raw).value
    except CurpError as exc:
        raise InvalidCurp(exc.message, part=exc.part) from None


class SignInService:
    def __init__(
        self,
        *,
        registry: CitizenRegistry,
        sessions: SessionService,
        limiter: RateLimiter,
        otp_secret: bytes,
        sms: SmsSender,
        otp_per_curp_per_hour: int,
        requests_per_address_per_minute: int,
        origin: str,
        verifier: EfirmaVerifier | None,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.limiter = limiter
        self.otp_secret = otp_secret
        self.sms = sms
        self.curp_limit = Limit("otp-curp", otp_per_curp_per_hour, 3600)
        self.address_limit = Limit("signin-address", requests_per_address_per_minute, 60)
        self.origin = origin
        self.verifier = verifier

    async def limit_address(self, session: AsyncSession, address: str, now: datetime) -> None:
        """Backstop against one address hammering sign-in; committed on its own."""
        try:
            await self.limiter.hit(session, self.address_limit, address, now.timestamp())
        finally:
            await session.commit()

    # -- CURP + OTP ------------------------------------------------------------------------

    async def start_otp(self, session: AsyncSession, raw_curp: str, now: datetime) -> OtpStarted:
        curp = _curp_or_problem(raw_curp)
        try:
            await self.limiter.hit(session, self.curp_limit, curp, now.timestamp())
        finally:
            await session.commit()
        citizen = await self.registry.by_curp(session, curp)
        phone = self.registry.phone_of(citizen) if citizen is not None else None
        challenge_id = otp.new_challenge_id()
        code = otp.new_code()
        expires_at = now + otp.LIFETIME
        session.add(
            OtpChallenge(
                id=challenge_id,
                # An unknown CURP (or one with no phone) gets a decoy nobody can answer.
                citizen_id=citizen.id if citizen is not None and phone else None,
                code_hash=otp.code_hash(self.otp_secret, challenge_id, code)
                if phone
                else secrets.token_hex(32),
                created_at=now,
                expires_at=expires_at,
                attempts=0,
            )
        )
        await session.commit()
        delivery = (phone, otp.sms_text(code)) if phone else None
        return OtpStarted(challenge_id, expires_at, delivery)

    async def deliver(self, started: OtpStarted) -> None:
        if started.delivery is not None:
            to, text = started.delivery
            await self.sms.send(to, text)

    async def verify_otp(
        self, session: AsyncSession, otp_id: str, code: str, now: datetime
    ) -> TokenPair:
        challenge = await session.get(OtpChallenge, otp_id, with_for_update=True)
        if challenge is None:
            raise OtpExpired()
        wellformed = len(code) == otp.CODE_DIGITS and code.isascii() and code.isdigit()
        matches = wellformed and secrets.compare_digest(
            challenge.code_hash, otp.code_hash(self.otp_secret, otp_id, code)
        )
        state = otp.OtpState(
            challenge.expires_at, challenge.attempts, challenge.consumed_at is not None
        )
        verdict = otp.judge(state, matches, now)
        if verdict == otp.Verdict.EXPIRED:
            raise OtpExpired()
        if verdict == otp.Verdict.LOCKED:
            raise OtpLocked()
        if verdict == otp.Verdict.WRONG or challenge.citizen_id is None:
            challenge.attempts += 1
            left = otp.MAX_ATTEMPTS - challenge.attempts
            await session.commit()
            if left <= 0:
                raise OtpLocked()
            raise OtpInvalid(
                f"El código no es correcto. Te quedan {left} intentos.", attempts_left=left
            )
        claimed = await session.execute(
            update(OtpChallenge)
            .where(OtpChallenge.id == otp_id, OtpChallenge.consumed_at.is_(None))
            .values(consumed_at=now, attempts=OtpChallenge.attempts + 1)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            await session.rollback()
            raise OtpExpired()
        pair = await self.sessions.start(
            session, challenge.citizen_id, AssuranceLevel.LOW, AMR_OTP_SMS, now
        )
        await session.commit()
        return pair

    # -- e.firma ---------------------------------------------------------------------------

    def _require_verifier(self) -> EfirmaVerifier:
        if self.verifier is None:
            raise EfirmaUnavailable(
                "El servicio no tiene configuradas autoridades certificadoras para e.firma."
            )
        return self.verifier

    async def efirma_challenge(self, session: AsyncSession, now: datetime) -> EfirmaChallengeIssued:
        self._require_verifier()
        challenge_id = secrets.token_urlsafe(18)
        nonce = secrets.token_urlsafe(32)
        expires_at = now + EFIRMA_CHALLENGE_LIFETIME
        to_sign = "\n".join(
            [
                "Carpeta Ciudadana MX: inicio de sesión con e.firma",
                f"origen: {self.origin}",
                f"reto: {challenge_id}",
                f"nonce: {nonce}",
                f"vence: {expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            ]
        )
        session.add(
            EfirmaChallenge(id=challenge_id, to_sign=to_sign, created_at=now, expires_at=expires_at)
        )
        await session.commit()
        return EfirmaChallengeIssued(challenge_id, to_sign, expires_at)

    async def efirma_verify(
        self,
        session: AsyncSession,
        challenge_id: str,
        certificate_b64: str,
        signature_b64: str,
        now: datetime,
    ) -> TokenPair:
        verifier = self._require_verifier()
        challenge = await session.get(EfirmaChallenge, challenge_id, with_for_update=True)
        if challenge is None:
            raise ChallengeUnknown()
        if challenge.consumed_at is not None:
            raise ChallengeUsed()
        if now >= challenge.expires_at:
            raise ChallengeExpired()
        # Single use, whatever the outcome: a refused attempt must ask for a new challenge.
        claimed = await session.execute(
            update(EfirmaChallenge)
            .where(EfirmaChallenge.id == challenge_id, EfirmaChallenge.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        to_sign = challenge.to_sign
        await session.commit()
        if getattr(claimed, "rowcount", 0) != 1:
            raise ChallengeUsed()
        certificate = _b64decode(certificate_b64, "certificado")
        signature = _b64decode(signature_b64, "firma")
        signer = await verifier.verify(certificate, signature, to_sign.encode("utf-8"), now)
        cert = signer.certificate
        try:
            curp = parse_curp(cert.curp or "").value
        except CurpError as exc:
            raise EfirmaCurpInvalid(
                f"La CURP del certificado no es válida: {exc.message}"
            ) from None
        citizen_id = await self._enrol_signer(session, curp, cert.name, cert.rfc, now)
        session.add(
            EfirmaSignIn(
                citizen_id=citizen_id,
                certificate_number=cert.certificate_number,
                issuer=cert.x509.issuer.rfc4514_string()[:400],
                verified_at=now,
                evidence=json.dumps(signer.evidence, sort_keys=True, default=str),
            )
        )
        pair = await self.sessions.start(session, citizen_id, AssuranceLevel.HIGH, AMR_EFIRMA, now)
        await session.commit()
        return pair

    async def _enrol_signer(
        self, session: AsyncSession, curp: str, name: str | None, rfc: str | None, now: datetime
    ) -> str:
        """First e.firma sign-in enrols; two racing first sign-ins end with one citizen."""
        for _ in range(2):
            try:
                result = await self.registry.enrol(
                    session, curp=curp, now=now, via="efirma", name=name, rfc=rfc
                )
                return result.citizen.id
            except IntegrityError:
                await session.rollback()
        citizen = await self.registry.by_curp(session, curp)
        if citizen is None:
            raise EfirmaUnavailable()
        return citizen.id


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EfirmaInputInvalid(f"El campo {what} no está en Base64.") from None
