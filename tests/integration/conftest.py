"""A real app (real database, real keys, real migrations) behind an in-process HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from eidentity.clock import SettableClock
from tests.conftest import Outbox
from wallet.app import create_app
from wallet.settings import Settings


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, outbox: Outbox) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        sms_sink=f"file:{outbox.path}",
        log_format="text",
    )


@pytest.fixture
async def client(settings: Settings, clock: SettableClock) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, clock=clock)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client
