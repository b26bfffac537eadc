"""``carpeta agency …`` and ``carpeta category …``: the operator registers who may do what."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eidentity.oauth import AGENCY_SCOPES
from wallet.agencies.registry import (
    AgencyRegistry,
    AgencyView,
    LegalBasis,
    RegistryError,
)
from wallet.cli_support import load_settings, with_services
from wallet.services import Services


def _read_jwks(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(
            f"No se pudo leer {path}: {exc.strerror}", param_hint="--jwks"
        ) from None


def _show(view: AgencyView) -> str:
    lines = [
        f"{view.id}: {view.name}{'  [DESACTIVADA]' if view.disabled else ''}",
        f"  scopes:     {' '.join(view.scopes)}",
        f"  categorías: {', '.join(view.categories) or '—'}",
        f"  propósitos: {', '.join(view.purposes) or '—'}",
        f"  llaves:     {', '.join(view.key_ids)}",
    ]
    for basis in view.legal_bases:
        lines.append(f"  base legal: {basis.category}:{basis.purpose} → {basis.reference}")
    if view.webhook_url:
        lines.append(f"  webhook:    {view.webhook_url}")
    return "\n".join(lines)


@click.group("agency")
def agency_group() -> None:
    """Dependencias y reguladores (clientes OAuth)."""


@agency_group.command("add")
@click.option("--id", "agency_id", required=True, help="Identificador (client_id), p. ej. sat.")
@click.option("--name", required=True)
@click.option("--jwks", "jwks_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--category", "categories", multiple=True, help="Categoría que puede pedir/publicar.")
@click.option("--purpose", "purposes", multiple=True, help="Propósito registrado.")
@click.option(
    "--legal-basis",
    "legal_bases",
    multiple=True,
    help="CATEGORIA:PROPOSITO:REFERENCIA (acceso sin consentimiento por ley).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help=f"Repetible. Por omisión: {' '.join(sorted(AGENCY_SCOPES))}; ledger:audit = regulador.",
)
@click.option("--webhook", "webhook_url", default=None, help="URL para avisos de consentimiento.")
def agency_add(
    agency_id: str,
    name: str,
    jwks_path: Path,
    categories: tuple[str, ...],
    purposes: tuple[str, ...],
    legal_bases: tuple[str, ...],
    scopes: tuple[str, ...],
    webhook_url: str | None,
) -> None:
    """Registrar (o volver a registrar) una dependencia."""
    jwks = _read_jwks(jwks_path)
    try:
        bases = [LegalBasis.parse(text) for text in legal_bases]
    except RegistryError as exc:
        raise click.BadParameter(str(exc), param_hint="--legal-basis") from None

    async def work(services: Services) -> AgencyView:
        async with services.sessions() as session:
            view = await AgencyRegistry().add(
                session,
                agency_id=agency_id,
                name=name,
                jwks=jwks,
                categories=categories,
                purposes=purposes,
                legal_bases=bases,
                scopes=scopes or AGENCY_SCOPES,
                webhook_url=webhook_url,
                now=services.clock.now(),
            )
            await session.commit()
            return view

    try:
        view = with_services(load_settings(), work)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_show(view))


@agency_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def agency_list(as_json: bool) -> None:
    """Listar dependencias y reguladores."""

    async def work(services: Services) -> list[AgencyView]:
        async with services.sessions() as session:
            return await AgencyRegistry().list(session)

    views = with_services(load_settings(), work)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": v.id,
                        "name": v.name,
                        "scopes": list(v.scopes),
                        "categories": list(v.categories),
                        "purposes": list(v.purposes),
                        "legal_bases": [
                            {"category": b.category, "purpose": b.purpose, "reference": b.reference}
                            for b in v.legal_bases
                        ],
                        "disabled": v.disabled,
                        "key_ids": list(v.key_ids),
                    }
                    for v in views
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for view in views:
        click.echo(_show(view))
    if not views:
        click.echo("No hay dependencias registradas.")


def _toggle(agency_id: str, disabled: bool) -> None:
    async def work(services: Services) -> None:
        async with services.sessions() as session:
            await AgencyRegistry().set_disabled(session, agency_id, disabled)
            await session.commit()

    try:
        with_services(load_settings(), work)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


@agency_group.command("disable")
@click.option("--id", "agency_id", required=True)
def agency_disable(agency_id: str) -> None:
    """Desactivar: sus tokens nuevos se niegan de inmediato."""
    _toggle(agency_id, True)
    click.echo(f"{agency_id} desactivada.")


@agency_group.command("enable")
@click.option("--id", "agency_id", required=True)
def agency_enable(agency_id: str) -> None:
    _toggle(agency_id, False)
    click.echo(f"{agency_id} activada.")


@agency_group.command("set-jwks")
@click.option("--id", "agency_id", required=True)
@click.option("--jwks", "jwks_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
def agency_set_jwks(agency_id: str, jwks_path: Path) -> None:
    """Rotar las llaves públicas de una dependencia."""
    jwks = _read_jwks(jwks_path)

    async def work(services: Services) -> None:
        async with services.sessions() as session:
            await AgencyRegistry().set_jwks(session, agency_id, jwks, services.clock.now())
            await session.commit()

    try:
        with_services(load_settings(), work)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Llaves de {agency_id} actualizadas.")


@click.group("category")
def category_group() -> None:
    """Catálogo de categorías de datos."""


@category_group.command("add")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--sensitive", is_flag=True, help="Dato sensible (LGPDPPSO).")
def category_add(code: str, name: str, sensitive: bool) -> None:
    async def work(services: Services) -> None:
        async with services.sessions() as session:
            await AgencyRegistry().add_category(session, code, name, sensitive)
            await session.commit()

    try:
        with_services(load_settings(), work)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Categoría {code} registrada{' (sensible)' if sensitive else ''}.")


@category_group.command("list")
def category_list() -> None:
    async def work(services: Services) -> list[tuple[str, str, bool]]:
        async with services.sessions() as session:
            rows = await AgencyRegistry().categories(session)
            return [(r.code, r.name, r.sensitive) for r in rows.values()]

    for code, name, sensitive in sorted(with_services(load_settings(), work)):
        click.echo(f"{code:32} {name}{'  [sensible]' if sensitive else ''}")


@agency_group.command("token")
@click.option("--id", "agency_id", required=True, help="client_id de la dependencia.")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Llave privada JWK (JSON) de la dependencia.",
)
@click.option(
    "--url", default="http://127.0.0.1:8000", show_default=True, help="Origen del servicio."
)
@click.option("--scope", default=None, help="Scopes pedidos (separados por espacio).")
def agency_token(agency_id: str, key_path: Path, url: str, scope: str | None) -> None:
    """Pedir un token como lo haría la dependencia (private_key_jwt, RFC 7523) e imprimirlo."""
    import time
    import uuid

    import httpx
    import jwt

    try:
        jwk = json.loads(key_path.read_text(encoding="utf-8"))
        key = jwt.PyJWK(jwk)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise click.BadParameter(f"No se pudo leer la llave: {exc}", param_hint="--key") from None
    token_url = url.rstrip("/") + "/oauth/token"
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": agency_id,
            "sub": agency_id,
            "aud": token_url,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        },
        key.key,
        algorithm=key.algorithm_name,
        headers={"kid": jwk["kid"]} if "kid" in jwk else None,
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    if scope:
        form["scope"] = scope
    try:
        response = httpx.post(token_url, data=form, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"No se pudo contactar {token_url}: {type(exc).__name__}"
        ) from None
    if response.status_code != 200:
        raise click.ClickException(f"{response.status_code}: {response.text}")
    click.echo(response.json()["access_token"])
