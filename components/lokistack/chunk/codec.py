"""Block compression codecs and the codec byte stored in a chunk header.

Each block payload is compressed as one buffer, so every codec here is a single call into C and
the Python binding's overhead is negligible at 256 KiB (performance-and-style.md B.1). The byte
values are this format's own (docs/format/chunk.md), not Loki's.
"""

from __future__ import annotations

import enum
import threading
import zlib
from typing import cast

import lz4.block  # type: ignore[import-untyped]  # python-lz4 ships no type information
import snappy
import zstandard


class Encoding(enum.StrEnum):
    """A chunk encoding; the value is the name used in configuration."""

    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


class DecompressError(ValueError):
    """The bytes are not valid for the codec (corruption, or the wrong codec)."""


DEFAULT_ENCODING = Encoding.SNAPPY

CODEC_BYTES: dict[Encoding, int] = {
    Encoding.NONE: 0,
    Encoding.GZIP: 1,
    Encoding.SNAPPY: 2,
    Encoding.LZ4: 3,
    Encoding.ZSTD: 4,
}
ENCODINGS_BY_BYTE: dict[int, Encoding] = {value: name for name, value in CODEC_BYTES.items()}

# Loki's chunk_encoding names, so a Loki config value keeps working. Loki's lz4 variants differ
# only in frame block size, which a whole-buffer lz4 block does not have.
_ALIASES: dict[str, Encoding] = {
    "lz4-64k": Encoding.LZ4,
    "lz4-256k": Encoding.LZ4,
    "lz4-1M": Encoding.LZ4,
    "lz4-4M": Encoding.LZ4,
    "flate": Encoding.GZIP,
}

_GZIP_LEVEL = 6  # gzip's own default: whoever picks gzip over snappy wants the ratio
_GZIP_WBITS = 31  # 16 + 15: a gzip member (RFC 1952) rather than a raw zlib stream
_ZSTD_LEVEL = 1  # on log lines as small as level 3 and faster (performance-and-style.md B.1)


class _ZstdContexts(threading.local):
    """One zstd context pair per thread: contexts are reused (creating one costs more than
    compressing a small block) but must not be shared between threads."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _ZstdContexts()


def parse_encoding(name: str) -> Encoding:
    """The encoding for a configuration value, accepting Loki's names as aliases."""
    alias = _ALIASES.get(name)
    if alias is not None:
        return alias
    try:
        return Encoding(name)
    except ValueError:
        valid = ", ".join([*(e.value for e in Encoding), *_ALIASES])
        raise ValueError(f"invalid chunk encoding {name!r}, valid values: {valid}") from None


def codec_byte(encoding: Encoding) -> int:
    """The byte that identifies ``encoding`` in a chunk header."""
    return CODEC_BYTES[encoding]


def encoding_for_byte(value: int) -> Encoding:
    """The encoding a chunk header's codec byte names; ``ValueError`` for an unknown byte."""
    try:
        return ENCODINGS_BY_BYTE[value]
    except KeyError:
        raise ValueError(f"unknown chunk codec byte {value}") from None


def compress(encoding: Encoding, data: bytes) -> bytes:
    """``data`` compressed with ``encoding``, as stored in a block."""
    if encoding is Encoding.SNAPPY:
        return bytes(snappy.compress(data))
    if encoding is Encoding.LZ4:
        return cast(bytes, lz4.block.compress(data, store_size=True))
    if encoding is Encoding.ZSTD:
        return _zstd.compressor.compress(data)
    if encoding is Encoding.GZIP:
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return compressor.compress(data) + compressor.flush()
    if encoding is Encoding.NONE:
        return bytes(data)
    raise ValueError(f"unknown encoding {encoding!r}")


def decompress(encoding: Encoding, data: bytes) -> bytes:
    """The payload that ``compress(encoding, ...)`` produced; ``DecompressError`` if invalid."""
    try:
        if encoding is Encoding.SNAPPY:
            return bytes(snappy.decompress(data))
        if encoding is Encoding.LZ4:
            return cast(bytes, lz4.block.decompress(data))
        if encoding is Encoding.ZSTD:
            return _zstd.decompressor.decompress(data)
        if encoding is Encoding.GZIP:
            decompressor = zlib.decompressobj(_GZIP_WBITS)
            result = decompressor.decompress(data)
            if not decompressor.eof or decompressor.unused_data:
                raise DecompressError("gzip: truncated stream or trailing bytes")
            return result
        if encoding is Encoding.NONE:
            return bytes(data)
    except DecompressError:
        raise
    except Exception as error:  # each binding raises its own type; callers need one
        raise DecompressError(f"{encoding.value}: {error}") from error
    raise ValueError(f"unknown encoding {encoding!r}")
