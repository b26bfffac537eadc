"""Hypothesis stateful test of the whole consent system against a small model.

Random sequences of request / approve / deny / grant / pause / resume / revoke / clock advance /
data request run through the real HTTP API and database. After every step the system's answer
equals the model's, and the ledger holds exactly one event per action (including the expiry of
each consent that time ended), never more, never fewer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from litestar.testing import TestClient
from sqlalchemy import func, select

from eidentity.assurance import AMR_OTP_SMS, AssuranceLevel
from eidentity.clock import SettableClock
from eidentity.curp import make_curp
from ledger.storage import leaves, queue
from tests.conftest import Outbox
from tests.integration.agencies import TestAgency
from wallet.agencies.registry import AgencyRegistry
from wallet.app import create_app
from wallet.consents.expiry import expire_due_consents
from wallet.services import Services
from wallet.settings import Settings

REQUEST_TTL = timedelta(days=30)
_serial = itertools.count()


@dataclass
class ModelConsent:
    status: str
    created: datetime
    valid_until: datetime
    duration: timedelta
    once: bool
    uses: list[datetime] = field(default_factory=list)

    def lapses(self) -> datetime | None:
        if self.status == "requested":
            return self.created + REQUEST_TTL
        if self.status in {"active", "paused"}:
            return self.valid_until
        return None


class Harness:
    """One real app on one real database, shared by every Hypothesis example."""

    def __init__(self, client: TestClient[Any], clock: SettableClock) -> None:
        self.client = client
        self.clock = clock
        self.services: Services = client.app.state["services"]
        self.agency = TestAgency("imss")
        self.client.blocking_portal.call(self._register)

    async def _register(self) -> None:
        async with self.services.sessions() as session:
            await AgencyRegistry().add(
                session,
                agency_id="imss",
                name="IMSS",
                jwks=self.agency.jwks(),
                categories=("acta_nacimiento",),
                purposes=("alta",),
                now=self.clock.now(),
            )
            await session.commit()

    def citizen(self) -> tuple[str, str]:
        """A fresh citizen per example: (curp, citizen id)."""
        n = next(_serial)
        born = datetime(1950, 1, 1) + timedelta(days=n * 7)
        curp = make_curp("GOMA", born.date(), "M", "DF", "RNR")

        async def enrol() -> str:
            async with self.services.sessions() as session:
                result = await self.services.registry.enrol(
                    session, curp=curp, phone=f"55{n:08d}", now=self.clock.now(), via="cli"
                )
                await session.commit()
                return result.citizen.id

        return curp, self.client.blocking_portal.call(enrol)

    def citizen_headers(self, citizen_id: str) -> dict[str, str]:
        now = int(self.clock.now().timestamp())
        token = self.services.access_tokens.issue_for_citizen(
            citizen_id, AssuranceLevel.HIGH, AMR_OTP_SMS, now
        )
        return {"Authorization": f"Bearer {token}"}

    def agency_headers(self) -> dict[str, str]:
        now = int(self.clock.now().timestamp())
        token = self.services.access_tokens.issue_for_client(
            "imss", ["consent:request", "data:request"], now
        )
        return {"Authorization": f"Bearer {token}"}

    def events_for(self, citizen_id: str) -> int:
        subject = self.services.ledger_writer.subject(citizen_id)

        async def count() -> int:
            await expire_due_consents(self.services)
            # One statement, one snapshot: the sequencer moves events from the queue to the
            # leaves concurrently, and two separate counts could see an event twice.
            queued = select(func.count()).select_from(queue).where(queue.c.subject == subject)
            integrated = select(func.count()).select_from(leaves).where(leaves.c.subject == subject)
            async with self.services.sessions() as session:
                row = (
                    await session.execute(
                        select(queued.scalar_subquery(), integrated.scalar_subquery())
                    )
                ).one()
                return int(row[0]) + int(row[1])

        return self.client.blocking_portal.call(count)


@pytest.fixture
def harness(tmp_path: Path, database_url: str, outbox: Outbox) -> Iterator[Harness]:
    clock = SettableClock()
    settings_ = Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        sms_sink=f"file:{outbox.path}",
        log_format="text",
    )
    with TestClient(app=create_app(settings_, clock=clock)) as client:
        yield Harness(client, clock)


class ConsentMachine(RuleBasedStateMachine):
    harness: Harness

    @initialize()
    def start(self) -> None:
        self.curp, self.citizen_id = self.harness.citizen()
        self.consents: dict[str, ModelConsent] = {}
        self.expected_events = 0

    # -- helpers -------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.harness.clock.now()

    def lapse(self) -> None:
        """Time ends consents; each lapse is one ledger event."""
        for consent in self.consents.values():
            deadline = consent.lapses()
            if deadline is not None and self.now >= deadline:
                consent.status = "expired"
                self.expected_events += 1

    def ids(self) -> list[str]:
        return sorted(self.consents)

    # -- rules ---------------------------------------------------------------------------

    @rule(days=st.integers(1, 40), periodic=st.booleans())
    def agency_requests(self, days: int, periodic: bool) -> None:
        body: dict[str, Any] = {
            "curp": self.curp,
            "categories": ["acta_nacimiento"],
            "purpose": "alta",
            "purpose_text": "Alta",
            "duration_days": days,
        }
        if periodic:
            body["frequency"] = {"unit": "day", "value": 2}
        r = self.harness.client.post(
            "/api/v1/agency/consent-requests", json=body, headers=self.harness.agency_headers()
        )
        assert r.status_code == 201, r.text
        self.lapse()
        self.consents[r.json()["id"]] = ModelConsent(
            "requested",
            self.now,
            self.now + timedelta(days=days),
            timedelta(days=days),
            not periodic,
        )
        self.expected_events += 1

    @rule(days=st.integers(1, 40))
    def citizen_grants(self, days: int) -> None:
        until = self.now + timedelta(days=days)
        r = self.harness.client.post(
            "/api/v1/me/consents",
            json={
                "consumer": "imss",
                "categories": ["acta_nacimiento"],
                "purpose": "alta",
                "valid_until": until.isoformat(),
            },
            headers=self.harness.citizen_headers(self.citizen_id),
        )
        assert r.status_code == 201, r.text
        self.lapse()
        self.consents[r.json()["consent_id"]] = ModelConsent(
            "active", self.now, until, timedelta(days=days), True
        )
        self.expected_events += 1

    @precondition(lambda self: bool(self.consents))
    @rule(
        pick=st.integers(0, 50),
        action=st.sampled_from(["approve", "deny", "pause", "resume", "revoke"]),
    )
    def citizen_acts(self, pick: int, action: str) -> None:
        consent_id = self.ids()[pick % len(self.consents)]
        route = "consent-requests" if action in {"approve", "deny"} else "consents"
        r = self.harness.client.post(
            f"/api/v1/me/{route}/{consent_id}/{action}",
            headers=self.harness.citizen_headers(self.citizen_id),
        )
        self.lapse()
        model = self.consents[consent_id]
        allowed = {
            "approve": {"requested"},
            "deny": {"requested"},
            "pause": {"active"},
            "resume": {"paused"},
            "revoke": {"active", "paused"},
        }[action]
        if model.status in allowed:
            assert r.status_code == 200, (action, model.status, r.text)
            model.status = {
                "approve": "active",
                "deny": "denied",
                "pause": "paused",
                "resume": "active",
                "revoke": "revoked",
            }[action]
            if action == "approve":
                model.valid_until = self.now + model.duration
            self.expected_events += 1
            assert r.json()["status"] == model.status
        else:
            assert r.status_code == 409, (action, model.status, r.status_code, r.text)

    @rule(hours=st.sampled_from([1, 13, 25, 24 * 10, 24 * 31]))
    def time_passes(self, hours: int) -> None:
        self.harness.clock.advance(hours * 3600)
        self.lapse()

    @rule(pick=st.integers(0, 50), named=st.booleans())
    def agency_asks_for_data(self, pick: int, named: bool) -> None:
        body: dict[str, Any] = {"curp": self.curp, "category": "acta_nacimiento", "purpose": "alta"}
        chosen = self.ids()[pick % len(self.consents)] if named and self.consents else None
        if chosen:
            body["consent_id"] = chosen
        r = self.harness.client.post(
            "/api/v1/agency/data-requests", json=body, headers=self.harness.agency_headers()
        )
        self.lapse()
        usable = [
            cid
            for cid, c in self.consents.items()
            if (chosen is None or cid == chosen) and self._usable(c)
        ]
        self.expected_events += 1
        if usable:
            assert r.status_code == 200, (body, r.text)
            used = r.json()["basis"]["consent_id"]
            assert used in usable
            self.consents[used].uses.append(self.now)
        else:
            assert r.status_code == 403, (
                body,
                {k: v.status for k, v in self.consents.items()},
                r.text,
            )

    def _usable(self, c: ModelConsent) -> bool:
        if c.status != "active" or self.now >= c.valid_until:
            return False
        if c.once:
            return not c.uses
        window = [u for u in c.uses if u > self.now - timedelta(days=1)]
        return len(window) < 2

    @invariant()
    def ledger_holds_one_event_per_action(self) -> None:
        if hasattr(self, "citizen_id"):
            assert self.harness.events_for(self.citizen_id) == self.expected_events

    @invariant()
    def statuses_agree(self) -> None:
        if not getattr(self, "consents", None):
            return
        r = self.harness.client.get(
            "/api/v1/me/consents", headers=self.harness.citizen_headers(self.citizen_id)
        )
        seen = {c["consent_id"]: c["status"] for c in r.json()["items"]}
        assert seen == {k: v.status for k, v in self.consents.items()}


def test_consent_system_matches_its_model(harness: Harness) -> None:
    ConsentMachine.harness = harness
    machine = ConsentMachine.TestCase
    machine.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine().runTest()
