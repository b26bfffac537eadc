"""The ``jti`` replay table on its own: single use, takeover after expiry, purge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eidentity.models import IdentityBase
from eidentity.oauth.models import AssertionJti, jti_hash, purge_expired, use_jti
from wallet.db import create_engine, session_factory

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jti.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(IdentityBase.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


def test_table_and_key_shape() -> None:
    table = IdentityBase.metadata.tables["oauth_assertion_jtis"]
    assert [c.name for c in table.primary_key.columns] == ["client_id", "jti_hash"]
    assert {i.name for i in table.indexes} == {"ix_oauth_assertion_jtis_expires_at"}
    assert len(jti_hash("x")) == 64


async def test_jti_is_single_use_per_client(session: AsyncSession) -> None:
    later = NOW + timedelta(minutes=5)
    assert await use_jti(session, "sat", "j1", later, NOW)
    assert not await use_jti(session, "sat", "j1", later, NOW)
    assert await use_jti(session, "imss", "j1", later, NOW)
    await session.commit()
    assert not await use_jti(session, "sat", "j1", later, NOW + timedelta(minutes=4))


async def test_expired_row_is_taken_over(session: AsyncSession) -> None:
    assert await use_jti(session, "sat", "j1", NOW + timedelta(seconds=60), NOW)
    await session.commit()
    after = NOW + timedelta(seconds=61)
    assert await use_jti(session, "sat", "j1", after + timedelta(minutes=5), after)
    assert not await use_jti(session, "sat", "j1", after + timedelta(minutes=5), after)


async def test_purge_removes_only_expired_rows(session: AsyncSession) -> None:
    for index, seconds in enumerate([10, 20, 600]):
        await use_jti(session, "sat", f"j{index}", NOW + timedelta(seconds=seconds), NOW)
    await use_jti(session, "imss", "j0", NOW + timedelta(seconds=10), NOW)
    await session.commit()
    later = NOW + timedelta(seconds=30)
    assert await purge_expired(session, later, client_id="imss") == 1
    assert await purge_expired(session, later) == 2
    await session.commit()
    remaining = await session.scalar(select(func.count()).select_from(AssertionJti))
    assert remaining == 1
