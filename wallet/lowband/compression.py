"""Putting the low-bandwidth layers *inside* Litestar's response compression.

Litestar wraps every route as ``user middleware → compression → handler``: middleware given to
``Litestar(middleware=…)`` sees already-compressed bytes. ETags must be computed on what the
client decodes, MessagePack transcoding and idempotent replays must work on plain bytes, and a
304 must not be fed to a compressor — so the layers go inside, through the one extension
point Litestar offers there, ``CompressionConfig.middleware_class``::

    compression(idempotency(representation(handler)))

:class:`LowbandCompressionConfig` is a ``CompressionConfig`` with two more fields and that
class preset. The compression wrapper also passes 1xx/204/304 through uncompressed and tidies
the ``Vary`` header (Litestar appends ``Accept-Encoding`` even when it is already listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from litestar.config.compression import CompressionConfig
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import ASGIApp, Message, Scope, Send

from wallet.lowband.asgi import event, merge_vary, response_headers
from wallet.lowband.idempotency import IdempotencyConfig, IdempotencyMiddleware
from wallet.lowband.representation import RepresentationConfig, RepresentationMiddleware

_NO_BODY = frozenset({204, 304})


class LowbandCompressionMiddleware(CompressionMiddleware):
    """Litestar's compression around our idempotency and representation layers."""

    def __init__(self, app: ASGIApp, config: CompressionConfig) -> None:
        representation = getattr(config, "representation", None)
        idempotency = getattr(config, "idempotency", None)
        inner: ASGIApp = RepresentationMiddleware(app, representation)
        if isinstance(idempotency, IdempotencyConfig):
            inner = IdempotencyMiddleware(inner, idempotency)
        super().__init__(app=inner, config=config)

    def create_compression_send_wrapper(
        self,
        send: Send,
        compression_encoding: Literal[CompressionEncoding.BROTLI, CompressionEncoding.GZIP] | str,
        scope: Scope,
    ) -> Send:
        async def tidy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = response_headers(event(message))
                for name, value in headers:
                    if name == b"vary" and value.lower().count(b"accept-encoding") > 1:
                        merge_vary(headers)
                        break
            await send(message)

        compress = super().create_compression_send_wrapper(tidy, compression_encoding, scope)
        bypass = False

        async def wrapper(message: Message) -> None:
            nonlocal bypass
            if message["type"] == "http.response.start":
                status = event(message)["status"]
                bypass = status in _NO_BODY or status < 200
            await (send if bypass else compress)(message)

        return wrapper


@dataclass
class LowbandCompressionConfig(CompressionConfig):
    """``CompressionConfig`` that also installs the low-bandwidth layers inside compression."""

    representation: RepresentationConfig = field(default_factory=RepresentationConfig)
    #: ``None`` leaves ``Idempotency-Key`` unhandled (no database needed).
    idempotency: IdempotencyConfig | None = None
    middleware_class: type[CompressionMiddleware] = LowbandCompressionMiddleware
