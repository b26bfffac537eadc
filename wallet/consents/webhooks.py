"""Signed webhooks to agencies on every consent status change, retried with back-off.

The body is the JSON payload stored with the delivery; the header ``Carpeta-Signature`` holds a
detached JWS (RFC 7515 Appendix F) over exactly those bytes, signed with a key listed in
``/.well-known/jwks.json`` — an agency verifies it with the same JWKS it uses for receipts.
The ``consent_webhooks`` table is the delivery log (attempts, last status, delivered/given up).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consent.storage import WebhookDelivery
from eidentity.clock import Clock
from eidentity.tokens import KeyRing
from wallet.unitofwork import write_session

log = logging.getLogger("carpeta.webhooks")

#: Seconds to wait after the n-th failed attempt; after the last, the delivery is given up.
BACKOFF = (10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600)
SIGNATURE_HEADER = "Carpeta-Signature"


def sign_detached(ring: KeyRing, body: bytes) -> str:
    """``header..signature``: the payload travels as the HTTP body, not inside the JWS."""
    key = ring.active
    token = jwt.api_jws.encode(
        body,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": "carpeta-webhook+jws"},
        is_payload_detached=True,
    )
    return token


def verify_detached(jwks: dict[str, object], signature: str, body: bytes) -> bool:
    """What an agency runs: True when ``signature`` is ours over exactly ``body``."""
    try:
        header = jwt.get_unverified_header(signature)
        keys = jwt.PyJWKSet.from_dict(jwks)
        key = next(k for k in keys.keys if k.key_id == header.get("kid"))
        jwt.api_jws.decode(signature, key.key, algorithms=["EdDSA"], detached_payload=body)
        return True
    except (jwt.PyJWTError, StopIteration, ValueError):
        return False


class WebhookDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ring: KeyRing,
        clock: Clock,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.sessions = sessions
        self.lock = lock
        self.ring = ring
        self.clock = clock
        self.timeout = timeout
        self.transport = transport
        self.wake = asyncio.Event()

    async def deliver_due(self, limit: int = 50) -> int:
        """Try every delivery that is due; returns how many were delivered now.

        No transaction stays open across the network: the due deliveries are claimed first
        (their next attempt moved past the time the attempts can take, so another process
        does not send them too), then sent, then their outcomes are written. A crash between
        the two leaves the claim to lapse and the delivery to be retried: at least once.
        """
        now = self.clock.now()
        async with write_session(self.sessions, self.lock) as session:
            due = list(
                await session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.delivered_at.is_(None),
                        WebhookDelivery.given_up_at.is_(None),
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .order_by(WebhookDelivery.id)
                    .limit(limit)
                )
            )
            if not due:
                return 0
            claim = now + timedelta(seconds=(self.timeout + 5) * len(due))
            for delivery in due:
                delivery.next_attempt_at = claim
            await session.commit()
        delivered = 0
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
            for delivery in due:
                delivered += await self._attempt(http, delivery, now)
        async with write_session(self.sessions, self.lock) as session:
            session.add_all(due)
            await session.commit()
        return delivered

    async def _attempt(
        self, http: httpx.AsyncClient, delivery: WebhookDelivery, now: datetime
    ) -> int:
        delivery.attempts += 1
        try:
            response = await http.post(
                delivery.url,
                content=delivery.payload,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign_detached(self.ring, delivery.payload),
                    "Carpeta-Delivery": str(delivery.id),
                },
            )
            delivery.last_status = response.status_code
            delivery.last_error = None
            if 200 <= response.status_code < 300:
                delivery.delivered_at = now
                return 1
        except httpx.HTTPError as exc:
            delivery.last_status = None
            delivery.last_error = type(exc).__name__
        if delivery.attempts > len(BACKOFF):
            delivery.given_up_at = now
            log.warning(
                "webhook given up", extra={"delivery": delivery.id, "agency": delivery.agency_id}
            )
        else:
            delivery.next_attempt_at = now + timedelta(seconds=BACKOFF[delivery.attempts - 1])
        return 0

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        while not stop.is_set():
            try:
                await self.deliver_due()
            except Exception as exc:  # the loop must survive a bad round
                log.warning("webhook round failed", extra={"error": type(exc).__name__})
            self.wake.clear()
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()


async def pending_for(session: AsyncSession, agency_id: str) -> list[WebhookDelivery]:
    """The delivery log of one agency, newest first (for operators and tests)."""
    return list(
        await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.agency_id == agency_id)
            .order_by(WebhookDelivery.id.desc())
        )
    )
