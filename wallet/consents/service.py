"""Consent actions as units of work: each stores the new version, its receipt, its ledger
event, the citizen's sync position and the agency's webhook — in one transaction.

The pure rules (``consent.machine``, ``consent.requests``) decide; this module only loads,
locks, stores and notifies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consent import machine
from consent.artefact import Actor, ConsentArtefact, FetchType, LedgerAnchor, Purpose
from consent.events import ConsentEvent
from consent.periods import Frequency, TimeUnit
from consent.receipt import sign_receipt
from consent.requests import (
    AgencyRegistration,
    ConsentRequest,
    OverAsk,
    open_request,
    outside_registration,
    required_assurance,
)
from consent.storage import ConsentRow, WebhookDelivery, apply_version, get_for_update
from eidentity.assurance import AssuranceLevel, step_up_challenge
from eidentity.citizens import CitizenRegistry
from eidentity.curp import CurpError, parse_curp
from eidentity.errors import InsufficientAssurance
from eidentity.tokens import KeyRing
from wallet.consents.schemas import ConsentOut, FrequencyIn, HistoryItem
from wallet.ledger_bridge import LedgerWriter
from wallet.models import Agency, AgencyCategory, AgencyPurpose, DataCategory, Notice
from wallet.problems import ApiProblem
from wallet.sync import citizen_owner, next_change_seq

NOT_FOUND = ApiProblem(404, "not-found", "No encontramos lo que buscas.")
#: Receipts signed on read that are remembered per process (a phone re-reads its consents).
LIVE_RECEIPTS = 4096


def frequency_of(body: FrequencyIn | None) -> Frequency | None:
    return None if body is None else Frequency(TimeUnit(body.unit), body.value)


@dataclass(frozen=True, slots=True)
class Stored:
    row: ConsentRow
    artefact: ConsentArtefact
    queue_id: int
    new_request: bool = False


class ConsentService:
    def __init__(
        self,
        ring: KeyRing,
        ledger: LedgerWriter,
        registry: CitizenRegistry,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.ring = ring
        self.ledger = ledger
        self.registry = registry
        self.new_id = new_id
        self._live_receipts: dict[tuple[object, ...], str] = {}

    # -- storing ----------------------------------------------------------------------------

    def receipt(self, artefact: ConsentArtefact) -> str:
        key = self.ring.active
        return sign_receipt(artefact, key.private_key, key.kid)

    def receipt_for(self, row: ConsentRow) -> str:
        """The receipt of the current version *with the live counters*: the one stored with
        the version while it is unused since, else signed now (and remembered)."""
        stored = row.stored_artefact()
        if (stored.use_count, stored.last_used_at) == (row.use_count, row.last_used_at):
            return row.receipt
        key = (row.consent_id, row.version, row.use_count, row.last_used_at, self.ring.active.kid)
        receipt = self._live_receipts.get(key)
        if receipt is None:
            receipt = self.receipt(row.to_artefact())
            if len(self._live_receipts) >= LIVE_RECEIPTS:
                self._live_receipts.clear()
            self._live_receipts[key] = receipt
        return receipt

    async def store(
        self,
        session: AsyncSession,
        row: ConsentRow | None,
        artefact: ConsentArtefact,
        event: ConsentEvent | None,
        now: datetime,
    ) -> Stored:
        """One new version: ledger event (if a status changed), receipt, history, webhook."""
        queue_id = await self.ledger.consent_event(session, event) if event is not None else 0
        if event is not None:
            artefact = artefact.with_anchor(LedgerAnchor(queue_id=str(queue_id)))
        seq = await next_change_seq(session, citizen_owner(artefact.data_principal))
        stored_row = apply_version(
            session, row, artefact, self.receipt(artefact), queue_id or None, seq, now
        )
        if event is not None:
            await self._enqueue_webhook(session, artefact, stored_row.receipt, now)
        await session.flush()
        return Stored(stored_row, artefact, queue_id)

    async def _enqueue_webhook(
        self, session: AsyncSession, artefact: ConsentArtefact, receipt: str, now: datetime
    ) -> None:
        agency = await session.get(Agency, artefact.data_consumer)
        if agency is None or not agency.webhook_url:
            return
        payload = {
            "type": "consent.status",
            "consent_id": artefact.consent_id,
            "status": artefact.status.value,
            "version": artefact.version,
            "at": artefact.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "receipt": receipt,
        }
        session.add(
            WebhookDelivery(
                agency_id=agency.id,
                consent_id=artefact.consent_id,
                url=agency.webhook_url,
                payload=json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    async def expire_due(
        self, session: AsyncSession, rows: Iterable[ConsentRow], now: datetime
    ) -> None:
        """Lapse whatever is due before acting on it, so the expiry has its own event."""
        for row in rows:
            transition = machine.expire_if_due(row.to_artefact(), now)
            if transition is not None:
                await self.store(session, row, transition.artefact, transition.event, now)

    async def notify_citizen(
        self,
        session: AsyncSession,
        citizen_id: str,
        kind: str,
        text: str,
        now: datetime,
        agency_id: str | None = None,
        consent_id: str | None = None,
    ) -> None:
        session.add(
            Notice(
                id=str(uuid.uuid4()),
                citizen_id=citizen_id,
                kind=kind,
                text=text,
                agency_id=agency_id,
                consent_id=consent_id,
                created_at=now,
                change_seq=await next_change_seq(session, citizen_owner(citizen_id)),
            )
        )

    # -- agencies ----------------------------------------------------------------------------

    async def registration(self, session: AsyncSession, agency_id: str) -> AgencyRegistration:
        categories = await session.scalars(
            select(AgencyCategory.category).where(AgencyCategory.agency_id == agency_id)
        )
        purposes = await session.scalars(
            select(AgencyPurpose.purpose).where(AgencyPurpose.agency_id == agency_id)
        )
        return AgencyRegistration(agency_id, frozenset(categories), frozenset(purposes))

    async def citizen_for(self, session: AsyncSession, raw_curp: str, now: datetime) -> str:
        try:
            curp = parse_curp(raw_curp).value
        except CurpError as exc:
            raise ApiProblem(
                422, "curp-invalid", "La CURP no es válida.", exc.message, part=exc.part
            ) from None
        citizen = await self.registry.by_curp(session, curp)
        if citizen is not None:
            return citizen.id
        return (await self.registry.enrol(session, curp=curp, now=now, via="agency")).citizen.id

    async def request(
        self,
        session: AsyncSession,
        agency_id: str,
        citizen_id: str,
        request: ConsentRequest,
        now: datetime,
    ) -> Stored | OverAsk:
        registration = await self.registration(session, agency_id)
        # ConsentError subclasses carry their problem fields; the app renders them as they are.
        outcome = open_request(
            request, registration, consent_id=self.new_id(), principal=citizen_id, now=now
        )
        if isinstance(outcome, OverAsk):
            await self.notify_citizen(
                session, citizen_id, "over-ask", outcome.citizen_notice, now, agency_id=agency_id
            )
            return outcome
        stored = await self.store(session, None, outcome.artefact, outcome.event, now)
        agency = await session.get(Agency, agency_id)
        name = agency.name if agency else agency_id
        await self.notify_citizen(
            session,
            citizen_id,
            "consent-request",
            f"{name} te pide permiso para consultar tus datos. Revisa la solicitud.",
            now,
            agency_id=agency_id,
            consent_id=stored.artefact.consent_id,
        )
        return Stored(stored.row, stored.artefact, stored.queue_id, new_request=True)

    # -- citizens ----------------------------------------------------------------------------

    async def _sensitivity(self, session: AsyncSession) -> dict[str, bool]:
        rows = await session.execute(select(DataCategory.code, DataCategory.sensitive))
        return {code: sensitive for code, sensitive in rows}

    async def require_assurance(
        self, session: AsyncSession, categories: Iterable[str], acr: AssuranceLevel
    ) -> None:
        """Sensitive data (LGPDPPSO) needs a stronger sign-in before sharing is switched on."""
        needed = AssuranceLevel(required_assurance(categories, await self._sensitivity(session)))
        if not acr.satisfies(needed):
            error = InsufficientAssurance(
                f"Esta autorización incluye datos sensibles: confirma tu identidad con nivel "
                f"«{needed.value}» (por ejemplo, con tu e.firma).",
                required_acr=needed.value,
            )
            error.headers = {"WWW-Authenticate": step_up_challenge(needed)}
            raise error

    async def own(self, session: AsyncSession, citizen_id: str, consent_id: str) -> ConsentRow:
        row = await get_for_update(session, consent_id)
        if row is None or row.principal != citizen_id:
            raise NOT_FOUND
        return row

    async def citizen_action(
        self,
        session: AsyncSession,
        citizen_id: str,
        consent_id: str,
        action: str,
        acr: AssuranceLevel,
        now: datetime,
    ) -> Stored:
        """approve | deny | pause | resume | revoke, by the citizen, on their own consent."""
        row = await self.own(session, citizen_id, consent_id)
        await self.expire_due(session, [row], now)
        artefact = row.to_artefact()
        if action in {"approve", "resume"}:
            await self.require_assurance(session, artefact.categories, acr)
        step = {
            "approve": machine.approve,
            "deny": machine.deny,
            "pause": machine.pause,
            "resume": machine.resume,
            "revoke": machine.revoke,
        }[action]
        transition = step(artefact, Actor.CITIZEN, now)
        return await self.store(session, row, transition.artefact, transition.event, now)

    async def grant(
        self,
        session: AsyncSession,
        citizen_id: str,
        consumer: str,
        categories: list[str],
        purpose: str,
        purpose_text: str | None,
        valid_until: datetime,
        frequency: Frequency | None,
        acr: AssuranceLevel,
        now: datetime,
    ) -> Stored:
        agency = await session.get(Agency, consumer)
        if agency is None or agency.disabled or "data:request" not in agency.scopes.split():
            raise ApiProblem(
                422,
                "consumer-unknown",
                "No conocemos esa dependencia.",
                f"«{consumer}» no está registrada para pedir datos.",
            )
        registration = await self.registration(session, consumer)
        extra_categories, extra_purposes = outside_registration(registration, categories, purpose)
        if extra_categories or extra_purposes:
            raise ApiProblem(
                422,
                "outside-agency-mandate",
                "Esa dependencia no está registrada para esos datos o esa finalidad.",
                "Fuera de su registro: " + ", ".join((*extra_categories, *extra_purposes)),
            )
        await self.require_assurance(session, categories, acr)
        if valid_until.tzinfo is None:
            raise ApiProblem(
                422,
                "invalid-request",
                "Los datos enviados no son válidos.",
                "valid_until debe incluir zona horaria.",
            )
        transition = machine.grant_consent(
            consent_id=self.new_id(),
            principal=citizen_id,
            consumer=consumer,
            categories=tuple(categories),
            purpose=Purpose(code=purpose, text=purpose_text or purpose.replace("_", " ")),
            valid_until=valid_until,
            now=now,
            fetch_type=FetchType.PERIODIC if frequency else FetchType.ONCE,
            frequency=frequency or machine.DEFAULT_FREQUENCY,
        )
        return await self.store(session, None, transition.artefact, transition.event, now)

    # -- views -------------------------------------------------------------------------------

    async def view(self, session: AsyncSession, row: ConsentRow) -> ConsentOut:
        agency = await session.get(Agency, row.consumer)
        categories = await self._category_rows(session)
        return consent_out(
            row, agency.name if agency else row.consumer, categories, self.receipt_for(row)
        )

    async def _category_rows(self, session: AsyncSession) -> dict[str, tuple[str, bool]]:
        rows = await session.execute(
            select(DataCategory.code, DataCategory.name, DataCategory.sensitive)
        )
        return {code: (name, sensitive) for code, name, sensitive in rows}


def consent_out(
    row: ConsentRow, consumer_name: str, categories: dict[str, tuple[str, bool]], receipt: str
) -> ConsentOut:
    artefact = row.to_artefact()
    data = artefact.to_dict()
    return ConsentOut(
        consent_id=artefact.consent_id,
        status=artefact.status.value,
        version=artefact.version,
        consumer=artefact.data_consumer,
        consumer_name=consumer_name,
        provider=artefact.data_provider,
        categories=list(artefact.categories),
        category_names=[categories.get(c, (c, False))[0] for c in artefact.categories],
        sensitive=any(categories.get(c, (c, True))[1] for c in artefact.categories),
        purpose={"code": artefact.purpose.code, "text": artefact.purpose.text},
        legal_basis=artefact.legal_basis,
        access_mode=artefact.access_mode.value,
        fetch_type=artefact.fetch_type.value,
        frequency=dict(data["frequency"]),
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
        use_count=artefact.use_count,
        last_used_at=data.get("last_used_at"),
        history=[
            HistoryItem(status=h["status"], at=h["at"], by=h["by"], reason=h.get("reason"))
            for h in data["history"]
        ],
        receipt=receipt,
        ledger={"queue_id": row.anchor_queue_id} if row.anchor_queue_id else None,
    )
