"""Small, real PNG pictures made with the standard library: the emulator's outputs, and the
broken ones its faults serve."""

from __future__ import annotations

import hashlib
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def gradient_png(width: int, height: int, key: str) -> bytes:
    """An RGB gradient of ``width`` x ``height`` whose colours follow from ``key``.

    Every row is the first row with all bytes shifted by one amount, so rows after the first
    are stored with PNG's "Up" filter as a single repeated byte: a 2-megapixel picture takes a
    few milliseconds to make and compresses to a few kilobytes.
    """
    digest = hashlib.sha256(key.encode()).digest()
    r0, g0, b0 = digest[0], digest[1], digest[2]
    step = max(1, digest[3] % 5)
    base = bytearray()
    for x in range(width):
        shade = (x * 256) // max(1, width)
        base += bytes(((r0 + shade) % 256, (g0 + shade // 2) % 256, (b0 + 255 - shade) % 256))

    def shift(y: int) -> int:
        return (y * step * 256) // max(1, height) % 256

    rows = [b"\x00" + bytes(base)]
    for y in range(1, height):
        delta = (shift(y) - shift(y - 1)) % 256
        rows.append(b"\x02" + bytes((delta,)) * len(base))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"".join(rows), 1)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels but that holds almost none:
    what a decompression bomb looks like before it is decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
