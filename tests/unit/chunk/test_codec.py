"""Codecs: every encoding round-trips, and the stored bytes are the formats the spec names."""

from __future__ import annotations

import gzip

import lz4.block  # type: ignore[import-untyped]
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import codec

ALL = list(codec.Encoding)


@pytest.mark.parametrize("encoding", ALL)
@settings(max_examples=30)
@given(data=st.binary(max_size=4096))
def test_round_trip(encoding: codec.Encoding, data: bytes) -> None:
    assert codec.decompress(encoding, codec.compress(encoding, data)) == data


@pytest.mark.parametrize("encoding", ALL)
def test_round_trip_large_repetitive(encoding: codec.Encoding) -> None:
    data = b"level=info msg=hello user=42 " * 10_000
    compressed = codec.compress(encoding, data)
    if encoding is not codec.Encoding.NONE:
        assert len(compressed) < len(data) // 10
    assert codec.decompress(encoding, compressed) == data


def test_stored_bytes_are_the_documented_formats() -> None:
    data = b"some log line " * 100
    assert gzip.decompress(codec.compress(codec.Encoding.GZIP, data)) == data
    assert snappy.decompress(codec.compress(codec.Encoding.SNAPPY, data)) == data
    lz4_bytes = codec.compress(codec.Encoding.LZ4, data)
    assert int.from_bytes(lz4_bytes[:4], "little") == len(data)
    assert lz4.block.decompress(lz4_bytes[4:], uncompressed_size=len(data)) == data
    zstd_bytes = codec.compress(codec.Encoding.ZSTD, data)
    assert zstandard.frame_content_size(zstd_bytes) == len(data)
    assert codec.compress(codec.Encoding.NONE, data) == data


def test_codec_bytes_are_fixed_and_invertible() -> None:
    assert {e.value: codec.codec_byte(e) for e in ALL} == {
        "none": 0,
        "gzip": 1,
        "snappy": 2,
        "lz4": 3,
        "zstd": 4,
    }
    for encoding in ALL:
        assert codec.encoding_for_byte(codec.codec_byte(encoding)) is encoding
    with pytest.raises(ValueError, match="unknown chunk codec byte 9"):
        codec.encoding_for_byte(9)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("snappy", codec.Encoding.SNAPPY),
        ("none", codec.Encoding.NONE),
        ("lz4-256k", codec.Encoding.LZ4),
        ("lz4-1M", codec.Encoding.LZ4),
        ("flate", codec.Encoding.GZIP),
        ("zstd", codec.Encoding.ZSTD),
    ],
)
def test_parse_encoding_accepts_loki_names(name: str, expected: codec.Encoding) -> None:
    assert codec.parse_encoding(name) is expected


def test_parse_encoding_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="invalid chunk encoding 'brotli', valid values: none"):
        codec.parse_encoding("brotli")


@pytest.mark.parametrize("encoding", [e for e in ALL if e is not codec.Encoding.NONE])
def test_garbage_raises_decompress_error(encoding: codec.Encoding) -> None:
    with pytest.raises(codec.DecompressError):
        codec.decompress(encoding, b"\xff\xfe definitely not compressed \x00" * 3)


def test_truncated_gzip_is_an_error() -> None:
    compressed = codec.compress(codec.Encoding.GZIP, b"x" * 1000)
    with pytest.raises(codec.DecompressError):
        codec.decompress(codec.Encoding.GZIP, compressed[:-3])
