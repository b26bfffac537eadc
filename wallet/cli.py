"""``carpeta``: the operator's command line (serve, migrate, enrol, keys, dev CA, demo)."""

from __future__ import annotations

import sys

import click

from eidentity.citizens import InvalidPhone
from eidentity.curp import CurpError
from eidentity.devca.cli import dev_ca
from wallet import db
from wallet.agencies.cli import agency_group, category_group
from wallet.cli_support import load_settings, with_services
from wallet.keystore import KeyStore
from wallet.ledger_cli import ledger_group
from wallet.services import Services
from wallet.settings import Settings, SettingsError, describe_settings


@click.group()
def main() -> None:
    """Carpeta Ciudadana MX."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=int, show_default=True)
@click.option("--workers", default=1, type=int, show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API (uvicorn). Configuration comes from CARPETA_* variables."""
    import uvicorn

    settings = load_settings()
    # Migrate once here, so that workers start on an up-to-date schema.
    _ensure_dir(settings)
    db.upgrade(settings.resolved_database_url)
    uvicorn.run(
        "wallet.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


def _ensure_dir(settings: Settings) -> bool:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return True


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (SQLite or PostgreSQL, per CARPETA_DATABASE_URL)."""
    settings = load_settings()
    _ensure_dir(settings)
    db.upgrade(settings.resolved_database_url, revision)
    click.echo("Base de datos al día.")


@main.group("citizen")
def citizen_group() -> None:
    """Citizens."""


@citizen_group.command("enroll")
@click.option("--curp", required=True)
@click.option("--phone", required=True, help="Celular a 10 dígitos o en formato +52…")
@click.option("--name", default=None)
def citizen_enroll(curp: str, phone: str, name: str | None) -> None:
    """Enrol a citizen (or update the phone and name of an enrolled one)."""
    settings = load_settings()

    async def work(services: Services) -> tuple[str, bool]:
        async with services.sessions() as session:
            result = await services.registry.enrol(
                session, curp=curp, phone=phone, name=name, now=services.clock.now(), via="cli"
            )
            await session.commit()
            return result.citizen.id, result.created

    try:
        citizen_id, created = with_services(settings, work)
    except CurpError as exc:
        raise click.BadParameter(exc.message, param_hint="--curp") from None
    except InvalidPhone as exc:
        raise click.BadParameter(exc.detail, param_hint="--phone") from None
    click.echo(("Inscrita" if created else "Actualizada") + f": {citizen_id}")


@main.group("keys")
def keys_group() -> None:
    """Token-signing keys."""


@keys_group.command("rotate")
@click.option("--keep", default=3, show_default=True, help="Keys kept published (newest first).")
def keys_rotate(keep: int) -> None:
    """Start signing with a new key; older ones stay in the JWKS until retired."""
    settings = load_settings()
    store = KeyStore(settings.resolved_keys_dir)
    store.signing_keys()
    store.rotate_signing_key()
    removed = store.retire_signing_keys(keep=max(2, keep))
    click.echo(f"Llave nueva creada; retiradas: {removed}. Reinicia los procesos para usarla.")


@main.command("settings")
def settings_command() -> None:
    """Print every CARPETA_* variable with its default."""
    for name, default, doc in describe_settings():
        click.echo(f"{name}={default}\n    {doc}")


main.add_command(dev_ca)
main.add_command(agency_group)
main.add_command(category_group)
main.add_command(ledger_group)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=int, show_default=True)
@click.option("--no-serve", is_flag=True, help="Only prepare the demo data.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Seed demo agencies, citizens and e.firma files, then serve on HOST:PORT."""
    from wallet.demo import prepare_demo, serve_demo

    try:
        settings, guide = prepare_demo(port=port)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(guide)
    sys.stdout.flush()
    if not no_serve:
        serve_demo(settings, host, port)


if __name__ == "__main__":
    main()
