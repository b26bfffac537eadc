"""``ledger`` click group: offline ``verify`` and the ``monitor`` witness.

Both work without the app or its database, so auditors can run them anywhere
(``python -m ledger …``); the app mounts this group as ``carpeta ledger`` and adds the
commands that need its database (``checkpoint``, ``export``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ledger.monitor import Monitor, MonitorStatus
from ledger.note import NoteError
from ledger.verify import load_public_key, verify_export_file

__all__ = ["ledger_group", "main"]


def _read_text_arg(value: str) -> str:
    """An option that is either a file path or the literal value."""
    path = Path(value)
    try:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    except OSError:
        pass
    return value


@click.group("ledger")
def ledger_group() -> None:
    """Registro de transparencia: verificar exportaciones y vigilar checkpoints."""


@ledger_group.command("verify")
@click.option(
    "--export",
    "export_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Exportación JSON Lines ({leaf_index, leaf}); '-' para la entrada estándar.",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Checkpoint firmado (nota C2SP), p. ej. guardado de GET /ledger/checkpoint.",
)
@click.option(
    "--public-key",
    "public_key",
    required=True,
    help="Llave pública: archivo o texto (base64 de 32 bytes, vkey, o el JSON de "
    "/.well-known/carpeta-ledger).",
)
@click.option("--origin", default=None, help="Exigir este origen en el checkpoint.")
@click.option("--quiet", is_flag=True, help="Sin barra de progreso.")
def verify_command(
    export_path: Path, checkpoint_path: Path, public_key: str, origin: str | None, quiet: bool
) -> None:
    """Recalcula la raíz del árbol con la exportación y la compara con el checkpoint firmado.

    Sale con 0 si coincide y con 1 ante cualquier diferencia.
    """
    try:
        key = load_public_key(_read_text_arg(public_key))
    except NoteError as exc:
        raise click.ClickException(str(exc)) from exc
    note = checkpoint_path.read_text(encoding="utf-8")
    if str(export_path) == "-":
        result = verify_export_file(sys.stdin.buffer, note, key, origin=origin)
    else:
        total = export_path.stat().st_size
        with click.progressbar(
            length=total,
            label="Verificando hojas",
            file=sys.stderr,
            hidden=quiet or total == 0,
        ) as bar:
            result = verify_export_file(export_path, note, key, origin=origin, progress=bar.update)
    click.echo(result.message(), err=not result.ok)
    if not result.ok:
        sys.exit(1)


@ledger_group.command("monitor")
@click.argument("url")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archivo de estado del testigo (se crea en la primera consulta).",
)
@click.option("--once", is_flag=True, help="Una sola consulta y salir.")
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Segundos entre consultas.",
)
def monitor_command(url: str, state_path: Path, once: bool, interval: float) -> None:
    """Testigo: verifica cada checkpoint nuevo de URL contra el anterior.

    Sale con 2 ante una bifurcación, retroceso, prueba inconsistente, firma inválida o cambio
    de llave; con 1 si no pudo consultar (solo con --once).
    """
    with Monitor(url, state_path) as monitor:
        while True:
            result = monitor.check_once()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            click.echo(f"[{stamp}] {result.message}", err=result.alarm)
            if result.alarm:
                if result.evidence:
                    click.echo("Evidencia:\n" + result.evidence, err=True)
                sys.exit(result.exit_code)
            if once:
                sys.exit(result.exit_code)
            if result.status is MonitorStatus.UNAVAILABLE:
                click.echo("Se reintentará.", err=True)
            time.sleep(interval)


def main() -> None:
    """``python -m ledger``: the group on its own, for auditors without the app."""
    ledger_group(prog_name="python -m ledger")
