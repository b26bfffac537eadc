"""Putting the low-bandwidth layers *inside* Litestar's response compression.

Litestar wraps every route as ``user middleware → compression → handler``: middleware given to
``Litestar(middleware=…)`` sees already-compressed bytes. ETags must be computed on what the
client decodes, MessagePack transcoding and idempotent replays must work on plain bytes, and a
304 must not be fed to a compressor — so the layers go inside, through the one extension
point Litestar offers there, ``CompressionConfig.middleware_class``::

    compression(idempotency(representation(handler)))

:class:`LowbandCompressionConfig` is a ``CompressionConfig`` with two more fields and that
class preset. The compression itself is Litestar's, unchanged: 304s have an empty body, below
the ``minimum_size`` Litestar insists is ≥ 1, so they are never compressed; and the
representation layer is told the compression settings so that ``Vary`` lists
``Accept-Encoding`` exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar.config.compression import CompressionConfig
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import ASGIApp

from wallet.lowband.idempotency import IdempotencyConfig, IdempotencyMiddleware
from wallet.lowband.representation import (
    CompressionHint,
    RepresentationConfig,
    RepresentationMiddleware,
)


def compression_hint(config: CompressionConfig) -> CompressionHint:
    """Litestar compresses when its backend's coding (or gzip, as fallback) is accepted."""
    codings = [config.compression_facade.encoding.encode()]
    if config.gzip_fallback and b"gzip" not in codings:
        codings.append(b"gzip")
    return CompressionHint(codings=tuple(codings), minimum_size=config.minimum_size)


class LowbandCompressionMiddleware(CompressionMiddleware):
    """Litestar's compression around our idempotency and representation layers."""

    def __init__(self, app: ASGIApp, config: CompressionConfig) -> None:
        representation = getattr(config, "representation", None)
        idempotency = getattr(config, "idempotency", None)
        inner: ASGIApp = RepresentationMiddleware(app, representation, compression_hint(config))
        if isinstance(idempotency, IdempotencyConfig):
            inner = IdempotencyMiddleware(inner, idempotency)
        super().__init__(app=inner, config=config)


# Litestar's AbstractMiddleware.__init_subclass__ wraps ``__call__`` with its exclusion check
# once per subclass; the inherited call is already wrapped, so skip the second check.
LowbandCompressionMiddleware.__call__ = CompressionMiddleware.__call__  # type: ignore[method-assign]


@dataclass
class LowbandCompressionConfig(CompressionConfig):
    """``CompressionConfig`` that also installs the low-bandwidth layers inside compression."""

    representation: RepresentationConfig = field(default_factory=RepresentationConfig)
    #: ``None`` leaves ``Idempotency-Key`` unhandled (no database needed).
    idempotency: IdempotencyConfig | None = None
    middleware_class: type[CompressionMiddleware] = LowbandCompressionMiddleware
