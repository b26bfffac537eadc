"""Draw the app icons (a folder with a check mark) as PNG, with no imaging library.

Run ``python -m pwa.icons`` to regenerate ``pwa/static/icon-*.png``; the committed files are
its output. Flat colours and simple shapes keep the PNGs a few kilobytes.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

from pwa.assets import STATIC_DIR

GUINDA = (0x61, 0x12, 0x32)
WHITE = (0xFF, 0xFF, 0xFF)
GOLD = (0xBC, 0x95, 0x5C)
Colour = tuple[int, int, int]


def _in_round_rect(x: float, y: float, box: tuple[float, float, float, float], r: float) -> bool:
    x0, y0, x1, y1 = box
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _near_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy))


def _sample(x: float, y: float, maskable: bool) -> tuple[Colour, float]:
    """Colour and coverage (0 or 1) of one point of the unit square."""
    if not maskable and not _in_round_rect(x, y, (0, 0, 1, 1), 0.18):
        return WHITE, 0.0
    check = ((0.37, 0.545), (0.465, 0.635), (0.64, 0.455))
    if min(_near_segment(x, y, check[0], check[1]), _near_segment(x, y, check[1], check[2])) < 0.04:
        return GUINDA, 1.0
    if _in_round_rect(x, y, (0.22, 0.27, 0.47, 0.40), 0.035):
        return GOLD, 1.0
    if _in_round_rect(x, y, (0.22, 0.33, 0.78, 0.75), 0.045):
        return WHITE, 1.0
    return GUINDA, 1.0


def render(size: int, *, maskable: bool = False, samples: int = 3) -> bytes:
    """RGBA PNG of ``size``×``size`` pixels, antialiased by ``samples``² supersampling."""
    rows = bytearray()
    step = 1.0 / (size * samples)
    for py in range(size):
        rows.append(0)  # filter type 0 (None) for every scanline
        for px in range(size):
            r = g = b = a = 0.0
            for sy in range(samples):
                for sx in range(samples):
                    colour, cover = _sample(
                        (px * samples + sx + 0.5) * step, (py * samples + sy + 0.5) * step, maskable
                    )
                    r += colour[0] * cover
                    g += colour[1] * cover
                    b += colour[2] * cover
                    a += cover
            n = samples * samples
            if a:
                rows += bytes((round(r / a), round(g / a), round(b / a), round(255 * a / n)))
            else:
                rows += b"\x00\x00\x00\x00"

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main(directory: Path = STATIC_DIR) -> None:
    (directory / "icon-192.png").write_bytes(render(192))
    (directory / "icon-512.png").write_bytes(render(512))
    (directory / "icon-maskable.png").write_bytes(render(512, maskable=True))


if __name__ == "__main__":
    main()
