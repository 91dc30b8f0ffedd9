"""Compression bombs the zoo serves: small on the wire, huge once decoded.

A gzip stream can shrink zeros about 1000-fold at most, so its bomb is
megabytes, not kilobytes; brotli and zstd go far beyond. None of the bombs
is ever held in full: gzip is one 1 KiB deflate block (a full flush makes it
independent of what came before) sent over and over; zstd repeats one frame;
brotli, which cannot be concatenated, is compressed once (~0.5 s) and cached.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import zlib
from collections.abc import AsyncGenerator, Callable

__all__ = ["MiB", "brotli_bomb", "deflate_bomb", "prepare_bombs", "zstd_bomb"]

MiB = 1 << 20


@functools.cache
def _gzip_unit() -> bytes:
    """Deflate of 1 MiB of zeros ending in a full flush: valid after any earlier unit."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)


@functools.cache
def _zeros_checksum(checksum: Callable[[bytes, int], int], start: int, mib: int) -> int:
    """``checksum`` (zlib's crc32 or adler32, from ``start``) of ``mib`` MiB of zeros."""
    zeros = bytes(MiB)
    value = start
    for _ in range(mib):
        value = checksum(zeros, value)
    return value


@functools.cache
def _zstd_frame() -> bytes:
    """One zstd frame of 256 MiB of zeros (~8 KB); frames concatenate."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=1).compressobj(size=256 * MiB)
    zeros = bytes(MiB)
    parts = [compressor.compress(zeros) for _ in range(256)]
    parts.append(compressor.flush())
    return b"".join(parts)


@functools.cache
def _brotli_bomb(mib: int) -> bytes:
    import brotli

    compressor = brotli.Compressor(quality=5)
    zeros = bytes(MiB)
    parts = [compressor.process(zeros) for _ in range(mib)]
    parts.append(compressor.finish())
    return b"".join(parts)


async def prepare_bombs(br_mib: int) -> None:
    """Compute the cached bomb parts off the loop, so no request waits for them
    (``br_mib``: the size of the brotli bomb the zoo serves)."""
    await asyncio.to_thread(_gzip_unit)
    await asyncio.to_thread(_zstd_frame)
    await asyncio.to_thread(_brotli_bomb, br_mib)


async def zstd_bomb(mib: int) -> bytes:
    """About ``mib`` MiB of zeros (at least 256) as concatenated zstd frames."""
    frame = await asyncio.to_thread(_zstd_frame)
    return frame * max(1, mib // 256)


async def brotli_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros as one brotli stream, compressed once in a thread and cached."""
    return await asyncio.to_thread(_brotli_bomb, mib)


async def deflate_bomb(total: int, *, gzip: bool) -> AsyncGenerator[bytes, None]:
    """``total`` MiB of zeros, as gzip or as zlib-wrapped deflate (``Content-Encoding:
    deflate``)."""
    unit = await asyncio.to_thread(_gzip_unit)
    if gzip:
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip header: deflate, no name
    else:
        yield b"\x78\xda"  # zlib header: deflate, 32 KiB window, best compression
    batch = unit * 64  # 64 MiB of zeros per write
    for _ in range(total // 64):
        yield batch
    if total % 64:
        yield unit * (total % 64)
    # The trailer's checksum costs a pass over the zeros: only for a client that read them.
    if gzip:
        crc = await asyncio.to_thread(_zeros_checksum, zlib.crc32, 0, total)
        yield b"\x03\x00" + struct.pack("<II", crc, (total * MiB) & 0xFFFFFFFF)
    else:
        adler = await asyncio.to_thread(_zeros_checksum, zlib.adler32, 1, total)
        yield b"\x03\x00" + struct.pack(">I", adler)
