"""The whole-body brotli facade: any sequence of writes decodes to exactly what was written,
a body written once is compressed in one call, and a streamed body still streams."""

from __future__ import annotations

from io import BytesIO

import brotli
from hypothesis import given
from hypothesis import strategies as st
from litestar.enums import CompressionEncoding

from wallet.lowband.compression import LowbandCompressionConfig, WholeBodyBrotli

CONFIG = LowbandCompressionConfig(backend="brotli", brotli_quality=3, brotli_lgwin=16)


def _run(pieces: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Drive the facade as Litestar's middleware does; returns the stream and what each
    message carried."""
    buffer = BytesIO()
    facade = WholeBodyBrotli(buffer, CompressionEncoding.BROTLI, CONFIG)
    sent: list[bytes] = []
    for index, piece in enumerate(pieces):
        facade.write(piece)
        if index == len(pieces) - 1:
            facade.close()
        sent.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    return b"".join(sent), sent


def test_the_config_installs_it() -> None:
    assert CONFIG.compression_facade is WholeBodyBrotli
    assert WholeBodyBrotli.encoding == CompressionEncoding.BROTLI


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_any_sequence_of_pieces_decodes_to_the_body(pieces: list[bytes]) -> None:
    stream, _ = _run(pieces)
    assert brotli.decompress(stream) == b"".join(pieces)


def test_a_body_in_one_piece_is_one_shot_brotli() -> None:
    body = b'{"records": [' + b'{"nombre": "Persona"},' * 40 + b"{}]}"
    stream, sent = _run([body])
    assert len(sent) == 1
    assert stream == brotli.compress(body, quality=3, lgwin=16, mode=brotli.MODE_TEXT)


def test_a_streamed_body_keeps_streaming() -> None:
    """From the second piece on, every message carries the compressed data so far."""
    pieces = [b"linea %d\n" % i * 50 for i in range(5)]
    stream, sent = _run(pieces)
    assert sent[0] == b""  # the first piece waits to see whether the body ends with it
    decoder = brotli.Decompressor()
    seen = b""
    for index, chunk in enumerate(sent[1:], start=1):
        seen += decoder.process(chunk)
        assert seen == b"".join(pieces[: index + 1])
    assert brotli.decompress(stream) == b"".join(pieces)
