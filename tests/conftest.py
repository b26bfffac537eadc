"""Shared fixtures: a real database per test (SQLite file or a fresh PostgreSQL database)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.pgcluster import PgCluster

hypothesis_settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """libpq DSN of a PostgreSQL server: the one `make test` started, or our own."""
    dsn = os.environ.get("CARPETA_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    if os.environ.get("CARPETA_TEST_SKIP_POSTGRES"):
        pytest.skip("PostgreSQL disabled by CARPETA_TEST_SKIP_POSTGRES")
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


def create_pg_database(dsn: str) -> str:
    """A fresh empty database; returns its SQLAlchemy asyncpg URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    subprocess.run(
        ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
        check=True,
        capture_output=True,
    )
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'carpeta.db'}"
    return create_pg_database(request.getfixturevalue("pg_dsn"))


class Outbox:
    """The SMS sink file (`file:PATH`) as a test reads it: what did the phone receive?"""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def last_code(self, to: str | None = None) -> str:
        for message in reversed(self.messages()):
            if to is None or message["to"] == to:
                codes = re.findall(r"(?<!\d)\d{6}(?!\d)", message["text"])
                assert len(codes) == 1, message
                return codes[0]
        raise AssertionError("no SMS was sent")


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "sms.jsonl")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_async(make: Any) -> Any:
    """Run ``make()`` (a coroutine) to completion on a private event loop in a thread.

    Sync tests may be called while pytest-asyncio's session loop is running; ``asyncio.run``
    refuses that, a thread with its own loop does not care.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests drive Chromium through Playwright's sync API, whose event loop stays
    marked as running in the main thread; `make test` runs them in a pytest process of their
    own (marker ``browser``) so asyncio tests never share a process with them."""
    for item in items:
        if Path(str(item.fspath)).name.startswith("test_pwa_"):
            item.add_marker(pytest.mark.browser)
