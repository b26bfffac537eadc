"""Small steps that many tests repeat: enrol a citizen, sign in by SMS code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar.testing import AsyncTestClient

from tests.conftest import Outbox
from wallet.app import Services

T = TypeVar("T")


def services_of(client: AsyncTestClient[Any]) -> Services:
    services: Services = client.app.state["services"]
    return services


def in_app_loop(client: AsyncTestClient[Any], fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on the app's own event loop (the test client serves from a thread)."""
    return client.blocking_portal.call(fn)  # type: ignore[no-any-return]


async def enrol(client: AsyncTestClient[Any], curp: str, phone: str, name: str = "Ana") -> str:
    """Enrol as `carpeta citizen enroll` does, through the app's real registry and database."""
    services = services_of(client)

    async def work() -> str:
        async with services.sessions() as session:
            result = await services.registry.enrol(
                session, curp=curp, phone=phone, name=name, now=services.clock.now(), via="cli"
            )
            await session.commit()
            return result.citizen.id

    return in_app_loop(client, work)


async def sign_in_otp(
    client: AsyncTestClient[Any], outbox: Outbox, curp: str, phone: str
) -> dict[str, Any]:
    started = await client.post("/auth/curp/start", json={"curp": curp})
    assert started.status_code == 200, started.text
    code = outbox.last_code(to=phone)
    verified = await client.post(
        "/auth/curp/verify", json={"otp_id": started.json()["otp_id"], "code": code}
    )
    assert verified.status_code == 200, verified.text
    body: dict[str, Any] = verified.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
