"""Route decorators whose guards are handed the route handler itself.

Litestar passes every guard a ``copy()`` of the route handler, on every request, so that a
guard cannot change the handler for the next caller. Ours (:mod:`eidentity.guards`) never
look at the handler at all, and that copy — about 8 µs — was the largest single cost of a
guarded request after its own work (a tenth of the dashboard summary). Routes import ``get``,
``post``, ``put``, ``delete`` from here instead of from ``litestar``: they build Litestar's own
``HTTPRouteHandler`` with that one method overridden; everything else is Litestar's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler


class GuardedRoute(HTTPRouteHandler):
    __slots__ = ()

    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]  # made async by Litestar


def get(path: str | Sequence[str] | None = None, **kwargs: Any) -> GuardedRoute:
    return GuardedRoute(path, http_method=HttpMethod.GET, **kwargs)


def post(path: str | Sequence[str] | None = None, **kwargs: Any) -> GuardedRoute:
    return GuardedRoute(path, http_method=HttpMethod.POST, **kwargs)


def put(path: str | Sequence[str] | None = None, **kwargs: Any) -> GuardedRoute:
    return GuardedRoute(path, http_method=HttpMethod.PUT, **kwargs)


def delete(path: str | Sequence[str] | None = None, **kwargs: Any) -> GuardedRoute:
    return GuardedRoute(path, http_method=HttpMethod.DELETE, **kwargs)
