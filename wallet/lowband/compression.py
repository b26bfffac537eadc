"""Putting the low-bandwidth layers *inside* Litestar's response compression.

Litestar wraps every route as ``user middleware → compression → handler``: middleware given to
``Litestar(middleware=…)`` sees already-compressed bytes. ETags must be computed on what the
client decodes, MessagePack transcoding and idempotent replays must work on plain bytes, and a
304 must not be fed to a compressor — so the layers go inside, through the one extension
point Litestar offers there, ``CompressionConfig.middleware_class``::

    compression(idempotency(representation(handler)))

:class:`LowbandCompressionConfig` is a ``CompressionConfig`` with two more fields and that
class preset. The compression itself is Litestar's middleware, with one brotli facade of ours
(:class:`WholeBodyBrotli`, one call per whole body instead of a flushed stream): 304s have an
empty body, below
the ``minimum_size`` Litestar insists is ≥ 1, so they are never compressed; and the
representation layer is told the compression settings so that ``Vary`` lists
``Accept-Encoding`` exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import brotli
from litestar.config.compression import CompressionConfig
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.middleware.compression.facade import CompressionFacade
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


class WholeBodyBrotli(CompressionFacade):
    """Brotli that compresses a body sent in one piece with one call.

    Litestar's facade streams every body: ``process`` then ``flush`` then ``finish``, and the
    flush of a fresh encoder costs more than compressing a small API response. Almost every
    response here is one piece, so the first piece is held back: if the body ends with it,
    it is compressed in one shot; if more follows, a streaming encoder takes over from it
    (the stream's first compressed bytes then leave with its second piece).
    """

    __slots__ = ("_compressor", "_pending", "buffer", "compression_encoding", "config")

    encoding = CompressionEncoding.BROTLI

    def __init__(
        self, buffer: BytesIO, compression_encoding: CompressionEncoding | str, config: Any
    ) -> None:
        self.buffer = buffer
        self.compression_encoding = compression_encoding
        self.config = config
        self._pending: bytes | None = None
        self._compressor: brotli.Compressor | None = None

    def _options(self) -> dict[str, int]:
        return {
            "quality": self.config.brotli_quality,
            "lgwin": self.config.brotli_lgwin,
            "mode": _BROTLI_MODES[self.config.brotli_mode],
        }

    def write(self, body: bytes) -> None:
        if self._compressor is None:
            if self._pending is None:
                self._pending = body
                return
            self._compressor = brotli.Compressor(**self._options())
            self.buffer.write(self._compressor.process(self._pending))
            self._pending = None
        self.buffer.write(self._compressor.process(body))
        self.buffer.write(self._compressor.flush())

    def close(self) -> None:
        if self._compressor is not None:
            self.buffer.write(self._compressor.finish())
        elif self._pending is not None:
            self.buffer.write(brotli.compress(self._pending, **self._options()))
            self._pending = None


_BROTLI_MODES = {"text": brotli.MODE_TEXT, "font": brotli.MODE_FONT, "generic": brotli.MODE_GENERIC}


@dataclass
class LowbandCompressionConfig(CompressionConfig):
    """``CompressionConfig`` that also installs the low-bandwidth layers inside compression."""

    representation: RepresentationConfig = field(default_factory=RepresentationConfig)
    #: ``None`` leaves ``Idempotency-Key`` unhandled (no database needed).
    idempotency: IdempotencyConfig | None = None
    middleware_class: type[CompressionMiddleware] = LowbandCompressionMiddleware

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend == "brotli":
            self.compression_facade = WholeBodyBrotli
