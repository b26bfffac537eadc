"""``carpeta dev-ca``: create a SAT-like test CA and issue e.firma/CSD files from it.

The app's main CLI mounts :data:`dev_ca` as ``carpeta dev-ca``. Everything written here is
for demos and tests: the CA key sits unencrypted next to the certificates.
"""

from __future__ import annotations

from pathlib import Path

import click

from eidentity.curp import CurpError, parse_curp
from eidentity.devca.ca import DevCa, init_ca
from eidentity.devca.ocsp_responder import OcspResponderServer

_DIR = click.Path(file_okay=False, path_type=Path)


def _load(directory: Path) -> DevCa:
    if not (directory / "ca.cer").exists():
        raise click.ClickException(f"{directory} no tiene una AC; usa `dev-ca init` primero.")
    return DevCa.load(directory)


@click.group("dev-ca")
def dev_ca() -> None:
    """AC de pruebas con el formato del SAT (.cer DER, .key PKCS#8 cifrada)."""


@dev_ca.command("init")
@click.argument("directory", type=_DIR)
@click.option("--key-size", type=click.Choice(["2048", "4096"]), default="4096")
def init_command(directory: Path, key_size: str) -> None:
    """Crear la AC en DIRECTORY."""
    try:
        ca = init_ca(directory, key_size=int(key_size))
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"AC creada: {ca.cer_path}")
    click.echo(f"Ancla de confianza (CARPETA_EFIRMA_TRUST_ANCHORS): {ca.pem_path}")


@dev_ca.command("issue")
@click.argument("directory", type=_DIR)
@click.option("--curp", required=True, help="CURP del titular (o del representante legal).")
@click.option("--rfc", required=True, help="RFC del titular (o del representante legal).")
@click.option("--name", required=True, help="Nombre del titular o razón social.")
@click.option("--password", required=True, help="Contraseña de la .key.")
@click.option("--expired", is_flag=True, help="Certificado ya vencido.")
@click.option("--not-yet-valid", is_flag=True, help="Certificado que aún no entra en vigor.")
@click.option("--csd", is_flag=True, help="Sello digital (CSD) en lugar de e.firma.")
@click.option("--company-rfc", default=None, help="RFC de la persona moral.")
@click.option("--revoked", is_flag=True, help="Revocarlo en cuanto se emite.")
def issue_command(
    directory: Path,
    curp: str,
    rfc: str,
    name: str,
    password: str,
    expired: bool,
    not_yet_valid: bool,
    csd: bool,
    company_rfc: str | None,
    revoked: bool,
) -> None:
    """Emitir un .cer y su .key en DIRECTORY."""
    try:
        valid_curp = parse_curp(curp).value
    except CurpError as exc:
        raise click.BadParameter(exc.message, param_hint="--curp") from None
    try:
        issued = _load(directory).issue(
            valid_curp,
            rfc,
            name,
            password,
            expired=expired,
            not_yet_valid=not_yet_valid,
            csd=csd,
            company_rfc=company_rfc,
            revoked=revoked,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Certificado: {issued.cer_path}")
    click.echo(f"Llave:       {issued.key_path}")
    click.echo(f"Número de certificado: {issued.certificate_number}")


@dev_ca.command("revoke")
@click.argument("directory", type=_DIR)
@click.argument("certificate_number")
def revoke_command(directory: Path, certificate_number: str) -> None:
    """Revocar un certificado por su número (20 dígitos)."""
    try:
        _load(directory).revoke(certificate_number)
    except KeyError:
        raise click.ClickException(f"{certificate_number} no lo emitió esta AC.") from None
    click.echo(f"Revocado: {certificate_number}")


@dev_ca.command("crl")
@click.argument("directory", type=_DIR)
def crl_command(directory: Path) -> None:
    """Escribir una CRL nueva en DIRECTORY/crl.der."""
    _load(directory).crl()
    click.echo(f"CRL: {directory / 'crl.der'}")


@dev_ca.command("serve-ocsp")
@click.argument("directory", type=_DIR)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8089, show_default=True)
@click.option("--delegated", is_flag=True, help="Firmar con un certificado OCSP delegado.")
def serve_ocsp_command(directory: Path, host: str, port: int, delegated: bool) -> None:
    """Responder OCSP (RFC 6960) para esta AC hasta Ctrl-C."""
    server = OcspResponderServer(_load(directory), host, port, delegated=delegated)
    click.echo(f"OCSP en {server.url} (CARPETA_EFIRMA_OCSP_URL)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
