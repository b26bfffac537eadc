"""``carpeta ledger``: the ledger package's verify/monitor plus commands that need our database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ledger import proofs
from ledger.cli import ledger_group
from wallet.cli_support import load_settings, with_services
from wallet.services import Services

__all__ = ["ledger_group"]


@ledger_group.command("checkpoint")
@click.option("--public-key", "show_key", is_flag=True, help="Imprimir también la llave pública.")
def checkpoint_command(show_key: bool) -> None:
    """Imprimir el último checkpoint firmado (nota C2SP)."""

    async def work(services: Services) -> tuple[str | None, str]:
        await services.sequencer.prepare()
        await services.sequencer.integrate_once()
        async with services.read_sessions() as session:
            latest = await proofs.latest_checkpoint(session)
        return (latest.note if latest else None), services.ledger_identity.public_key_b64

    note, key = with_services(load_settings(), work)
    if note is None:
        raise click.ClickException("La bitácora no tiene checkpoint todavía.")
    click.echo(note, nl=False)
    if show_key:
        click.echo(f"\n{key}")


@ledger_group.command("export")
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Archivo JSON Lines (por omisión, la salida estándar).",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Guardar aquí el checkpoint contra el que se exporta.",
)
def export_command(out_path: Path | None, checkpoint_path: Path | None) -> None:
    """Exportar todas las hojas hasta el último checkpoint (para `carpeta ledger verify`)."""

    async def work(services: Services) -> int:
        async with services.read_sessions() as session:
            latest = await proofs.latest_checkpoint(session)
        if latest is None:
            raise click.ClickException("La bitácora no tiene checkpoint todavía.")
        if checkpoint_path is not None:
            await asyncio.to_thread(checkpoint_path.write_text, latest.note, encoding="utf-8")
        sink = out_path.open("wb") if out_path else sys.stdout.buffer
        try:
            async for leaf in proofs.export_leaves(services.engine, tree_size=latest.size):
                sink.write(leaf.json_line())
        finally:
            if out_path:
                sink.close()
        return latest.size

    size = with_services(load_settings(), work)
    if out_path:
        click.echo(f"{size} hojas exportadas a {out_path}", err=True)
