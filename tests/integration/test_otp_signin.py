"""CURP + SMS code sign-in through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from eidentity.clock import SettableClock
from tests.conftest import Outbox
from tests.integration.helpers import bearer, enrol, sign_in_otp

CURP = "BAAI810809HJCRCS02"
PHONE = "+525512345678"
UNKNOWN_CURP = "PICD861230HSLCRV02"


async def test_sign_in_with_sms_code_reaches_my_profile(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    citizen_id = await enrol(client, CURP, "55 1234 5678")
    tokens = await sign_in_otp(client, outbox, CURP.lower() + "  ", PHONE)
    assert tokens["token_type"] == "Bearer"
    assert 0 < tokens["expires_in"] <= 600
    assert tokens["acr"] == "low"
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == citizen_id
    assert body["curp"] == CURP
    assert body["assurance"] == {"level": "low", "methods": ["otp", "sms"]}
    assert body["phone"].endswith("78") and "5512345678" not in body["phone"]


async def test_sms_is_short_spanish_and_holds_only_the_code(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    await enrol(client, CURP, PHONE)
    await client.post("/auth/curp/start", json={"curp": CURP})
    [message] = outbox.messages()
    assert message["to"] == PHONE
    assert "código" in message["text"] and len(message["text"]) <= 160
    assert CURP not in message["text"]
    assert {"at", "to", "text"} <= set(message)


async def test_wrong_code_counts_down_then_locks(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    await enrol(client, CURP, PHONE)
    started = (await client.post("/auth/curp/start", json={"curp": CURP})).json()
    good = outbox.last_code()
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        r = await client.post(
            "/auth/curp/verify", json={"otp_id": started["otp_id"], "code": wrong}
        )
        assert r.status_code == 401
        assert r.json()["type"].endswith("/otp-invalid")
        assert r.json()["attempts_left"] == left
    r = await client.post("/auth/curp/verify", json={"otp_id": started["otp_id"], "code": wrong})
    assert r.json()["type"].endswith("/otp-locked")
    # Even the right code no longer works on a locked challenge.
    r = await client.post("/auth/curp/verify", json={"otp_id": started["otp_id"], "code": good})
    assert r.status_code == 401
    assert r.json()["type"].endswith("/otp-locked")


async def test_code_is_single_use(client: AsyncTestClient[Any], outbox: Outbox) -> None:
    await enrol(client, CURP, PHONE)
    started = (await client.post("/auth/curp/start", json={"curp": CURP})).json()
    body = {"otp_id": started["otp_id"], "code": outbox.last_code()}
    assert (await client.post("/auth/curp/verify", json=body)).status_code == 200
    again = await client.post("/auth/curp/verify", json=body)
    assert again.status_code == 401
    assert again.json()["type"].endswith("/otp-expired")


async def test_code_expires_after_five_minutes(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    await enrol(client, CURP, PHONE)
    started = (await client.post("/auth/curp/start", json={"curp": CURP})).json()
    clock.advance(5 * 60 + 1)
    r = await client.post(
        "/auth/curp/verify", json={"otp_id": started["otp_id"], "code": outbox.last_code()}
    )
    assert r.status_code == 401
    assert r.json()["type"].endswith("/otp-expired")


async def test_code_still_works_just_before_expiry(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    await enrol(client, CURP, PHONE)
    started = (await client.post("/auth/curp/start", json={"curp": CURP})).json()
    clock.advance(5 * 60 - 2)
    r = await client.post(
        "/auth/curp/verify", json={"otp_id": started["otp_id"], "code": outbox.last_code()}
    )
    assert r.status_code == 200


async def test_unknown_curp_gets_the_same_answer_and_no_sms(
    client: AsyncTestClient[Any], outbox: Outbox
) -> None:
    await enrol(client, CURP, PHONE)
    known = await client.post("/auth/curp/start", json={"curp": CURP})
    unknown = await client.post("/auth/curp/start", json={"curp": UNKNOWN_CURP})
    assert known.status_code == unknown.status_code == 200
    assert set(known.json()) == set(unknown.json())
    assert known.json()["message"] == unknown.json()["message"]
    assert len(known.json()["otp_id"]) == len(unknown.json()["otp_id"])
    assert known.headers.get("content-length") == unknown.headers.get("content-length")
    assert len(outbox.messages()) == 1
    # Guessing on the decoy challenge fails exactly like a wrong code on a real one.
    k = await client.post(
        "/auth/curp/verify", json={"otp_id": known.json()["otp_id"], "code": "000000"}
    )
    u = await client.post(
        "/auth/curp/verify", json={"otp_id": unknown.json()["otp_id"], "code": "000000"}
    )
    if k.status_code == 200:  # one in a million: the guess was right
        return
    assert (k.status_code, k.json()) == (u.status_code, u.json())


async def test_codes_per_curp_are_rate_limited_for_known_and_unknown_alike(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    await enrol(client, CURP, PHONE)
    for curp in (CURP, UNKNOWN_CURP):
        statuses = [
            (await client.post("/auth/curp/start", json={"curp": curp})).status_code
            for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
    limited = await client.post("/auth/curp/start", json={"curp": CURP})
    assert limited.json()["type"].endswith("/too-many-requests")
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    assert len(outbox.messages()) == 5
    clock.advance(3600)
    assert (await client.post("/auth/curp/start", json={"curp": CURP})).status_code == 200


async def test_invalid_curp_is_refused_with_the_failing_part(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/auth/curp/start", json={"curp": "BAAI810809HJCRCS09"})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/curp-invalid")
    assert body["part"] == "check-digit"
    assert "2" in body["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_malformed_bodies_get_problem_answers(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/auth/curp/start", json={"curp": 12})
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-request")
    r = await client.post(
        "/auth/curp/start", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = await client.post(
        "/auth/curp/start", content=b"curp=X", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415 and r.json()["type"].endswith("/unsupported-media-type")
    r = await client.post("/auth/curp/verify", json={"otp_id": "x", "code": "1" * 20})
    assert r.status_code == 400
    r = await client.get("/auth/curp/start")
    assert r.status_code == 405 and r.json()["type"].endswith("/method-not-allowed")
    big = b'{"curp": "' + b"A" * 2_000_000 + b'"}'
    r = await client.post(
        "/auth/curp/start", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["type"].endswith("/payload-too-large")


async def test_housekeeping_forgets_stale_challenges_but_not_live_ones(
    client: AsyncTestClient[Any], outbox: Outbox, clock: SettableClock
) -> None:
    from sqlalchemy import func, select

    from eidentity.maintenance import purge_expired
    from eidentity.models import OtpChallenge
    from tests.integration.helpers import in_app_loop, services_of

    await enrol(client, CURP, PHONE)
    await client.post("/auth/curp/start", json={"curp": CURP})
    services = services_of(client)

    async def purge_and_count() -> int:
        async with services.sessions() as session:
            await purge_expired(session, clock.now())
            return int(await session.scalar(select(func.count()).select_from(OtpChallenge)) or 0)

    assert in_app_loop(client, purge_and_count) == 1
    clock.advance(2 * 86400)
    assert in_app_loop(client, purge_and_count) == 0
