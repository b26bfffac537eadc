"""What every CLI command needs: settings from the environment, the real services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from eidentity.clock import SystemClock
from wallet.services import Services, build_services
from wallet.settings import Settings, SettingsError

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the real services (migrating first), run ``work``, close everything."""

    async def run() -> T:
        services = await build_services(settings, SystemClock())
        try:
            return await work(services)
        finally:
            await services.engine.dispose()

    return asyncio.run(run())
