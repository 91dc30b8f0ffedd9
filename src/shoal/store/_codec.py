"""How values are kept in a store's columns: compact JSON, zstd bodies, storable text.

Backend-neutral, so that every backend stores the same bytes for the same
value: JSON columns are NULL when the value is empty, headers are a JSON list
of ``[name, value]`` pairs, bodies are one zstd frame (level 3) with the
content size in its header.
"""

from __future__ import annotations

import json
import threading

import zstandard

from shoal.core.model import Header

__all__ = [
    "ZSTD_LEVEL",
    "compress",
    "decode_headers",
    "decode_json",
    "decompress",
    "encode_fields",
    "encode_json",
    "storable",
]

ZSTD_LEVEL = 3


def _jsonable(value: object) -> object:
    """What JSON cannot hold in extracted fields is kept as text rather than failing a batch."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# Prebuilt encoders: json.dumps(..., separators=...) would build one per call.
encode_json = json.JSONEncoder(separators=(",", ":")).encode
encode_fields = json.JSONEncoder(separators=(",", ":"), default=_jsonable).encode
decode_json = json.JSONDecoder().decode


def decode_headers(text: str | None) -> tuple[Header, ...]:
    if text is None:
        return ()
    return tuple((name, value) for name, value in decode_json(text))


_local = threading.local()


def compress(data: bytes) -> bytes:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        # (De)compressor objects must not be shared between threads: one per thread.
        compressor = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor.compress(data)


def decompress(data: bytes) -> bytes:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(data)


def storable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (what decoding garbage with surrogateescape
    leaves behind) become U+FFFD, which every database accepts."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
