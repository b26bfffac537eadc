"""RFC 9457 problem details for every error the API can give.

Domain packages raise their own errors carrying ``slug``, ``title`` and ``status``; framework
errors (validation, 404, 405, 413, …) are mapped here. Nothing internal ever reaches a client:
an unexpected exception becomes a generic 500 problem and is logged with a reference id.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

log = logging.getLogger("carpeta.errors")

PROBLEM_BASE = "https://carpeta.gob.mx/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


@runtime_checkable
class UserFacingError(Protocol):
    """What a domain error needs to become a problem response."""

    slug: str
    title: str
    status: int
    detail: str


class ApiProblem(Exception):
    """An error raised by our HTTP layer itself, with its problem fields."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail or title
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response[bytes]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    for key, value in (extensions or {}).items():
        if key not in body:
            body[key] = value
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# Framework statuses → (slug, es-MX title)
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "La solicitud no es válida."),
    401: ("unauthenticated", "Necesitas iniciar sesión."),
    403: ("forbidden", "No tienes permiso para hacer esto."),
    404: ("not-found", "No encontramos lo que buscas."),
    405: ("method-not-allowed", "Este método no está permitido aquí."),
    406: ("not-acceptable", "No podemos responder en el formato pedido."),
    409: ("conflict", "La solicitud choca con el estado actual."),
    413: ("payload-too-large", "El contenido enviado es demasiado grande."),
    415: ("unsupported-media-type", "El tipo de contenido no es compatible."),
    422: ("unprocessable", "La solicitud no se puede procesar."),
    429: ("too-many-requests", "Hiciste demasiadas solicitudes. Espera un momento."),
    500: ("internal-error", "Ocurrió un error interno. Intenta de nuevo más tarde."),
    503: ("unavailable", "El servicio no está disponible por el momento."),
}


def _validation_errors(exc: ValidationException) -> list[dict[str, str]]:
    extra = exc.extra
    errors: list[dict[str, str]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                errors.append(
                    {
                        "field": str(item.get("key") or item.get("source") or ""),
                        "message": str(item.get("message", "")),
                    }
                )
    return errors


def _handle_domain(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, UserFacingError)
    extensions = getattr(exc, "extensions", None) or {}
    headers = getattr(exc, "headers", None) or {}
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail if exc.detail != exc.title else None,
        headers=dict(headers),
        extensions=dict(extensions),
    )


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    slug, title = _BY_STATUS.get(status, _BY_STATUS[500 if status >= 500 else 400])
    headers = dict(exc.headers or {})
    extensions: dict[str, Any] = {}
    detail: str | None = None
    if isinstance(exc, ValidationException):
        slug, title = "invalid-request", "Los datos enviados no son válidos."
        status = 400
        errors = _validation_errors(exc)
        if errors:
            extensions["errors"] = errors
            detail = "; ".join(
                f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
            )
        elif exc.detail and exc.detail != "Bad Request":
            detail = exc.detail
    # Other framework messages are English boilerplate; the es-MX title says it better.
    if status >= 500:
        return _handle_unexpected(request, exc)
    return problem_response(status, slug, title, detail, headers=headers, extensions=extensions)


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    reference = secrets.token_hex(6)
    # The exception type and the route template only: messages may quote user input.
    route = request.scope.get("path_template") or "?"
    log.error(
        "unhandled error",
        extra={"reference": reference, "error": type(exc).__name__, "route": route},
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    slug, title = _BY_STATUS[500]
    return problem_response(500, slug, title, extensions={"reference": reference})


def _dispatch(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, ApiProblem):
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail if exc.detail != exc.title else None,
            headers=exc.headers,
            extensions=exc.extensions,
        )
    if isinstance(exc, HTTPException):
        return _handle_http(request, exc)
    if isinstance(exc, UserFacingError):
        return _handle_domain(request, exc)
    return _handle_unexpected(request, exc)


exception_handlers: dict[type[Exception] | int, Any] = {Exception: _dispatch}
