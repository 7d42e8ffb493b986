"""Chunk keys: the exact format of docs/format/storage.md, and only its canonical spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.storage import chunk_keys

TENANT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()"
tenants = st.text(TENANT_CHARS, min_size=1, max_size=150).filter(lambda t: t not in (".", ".."))
bounds = st.tuples(st.integers(0, chunk_keys.MAX_I64), st.integers(0, chunk_keys.MAX_I64)).map(
    sorted
)


def test_documented_example() -> None:
    key = chunk_keys.chunk_key(
        "fake", 0x6C3E7A9F1B2D4E50, 0x17A2B7E1C8A3F000, 0x17A2B8412C6D4A3F, 0x0A1B2C3D
    )
    assert key == "fake/chunks/6c3e7a9f1b2d4e50/17a2b7e1c8a3f000-17a2b8412c6d4a3f-0a1b2c3d"


def test_padding_rules() -> None:
    assert chunk_keys.chunk_key("t", 1, 0, 15, 2) == "t/chunks/0000000000000001/0-f-00000002"
    assert chunk_keys.stream_prefix("t", 255) == "t/chunks/00000000000000ff/"


@given(
    tenants,
    st.integers(0, chunk_keys.MAX_U64),
    bounds,
    st.integers(0, chunk_keys.MAX_U32),
)
def test_round_trip(tenant: str, fingerprint: int, span: list[int], checksum: int) -> None:
    key = chunk_keys.chunk_key(tenant, fingerprint, span[0], span[1], checksum)
    parsed = chunk_keys.parse_chunk_key(key)
    assert parsed == chunk_keys.ChunkKey(tenant, fingerprint, span[0], span[1], checksum)
    assert str(parsed) == key
    assert key.startswith(chunk_keys.stream_prefix(tenant, fingerprint))


@given(st.text(max_size=80))
def test_parse_accepts_only_canonical_keys(text: str) -> None:
    try:
        parsed = chunk_keys.parse_chunk_key(text)
    except chunk_keys.ChunkKeyError:
        return
    assert str(parsed) == text


@pytest.mark.parametrize(
    "key",
    [
        "fake/chunks/6c3e7a9f1b2d4e50/A-b-0a1b2c3d",  # upper case
        "fake/chunks/6C3E7A9F1B2D4E50/a-b-0a1b2c3d",
        "fake/chunks/6c3e7a9f1b2d4e50/0a-b-0a1b2c3d",  # leading zero
        "fake/chunks/6c3e7a9f1b2d4e5/a-b-0a1b2c3d",  # 15-digit fingerprint
        "fake/chunks/6c3e7a9f1b2d4e50/a-b-a1b2c3d",  # 7-digit checksum
        "fake/chunks/6c3e7a9f1b2d4e50/b-a-0a1b2c3d",  # from > through
        "fake/chunks/6c3e7a9f1b2d4e50/a-b-0a1b2c3d/x",
        "fake/6c3e7a9f1b2d4e50/a:b:0a1b2c3d",  # Loki's layout
        "fake/chunk/6c3e7a9f1b2d4e50/a-b-0a1b2c3d",
        "../chunks/6c3e7a9f1b2d4e50/a-b-0a1b2c3d",
        "a b/chunks/6c3e7a9f1b2d4e50/a-b-0a1b2c3d",
        "/chunks/6c3e7a9f1b2d4e50/a-b-0a1b2c3d",
        "fake/chunks/6c3e7a9f1b2d4e50/8000000000000000-8000000000000000-00000000",  # > int64
    ],
)
def test_non_canonical_keys_are_rejected(key: str) -> None:
    with pytest.raises(chunk_keys.ChunkKeyError):
        chunk_keys.parse_chunk_key(key)


@pytest.mark.parametrize(
    ("tenant", "fingerprint", "from_ns", "through_ns", "checksum"),
    [
        ("", 1, 1, 2, 3),
        ("..", 1, 1, 2, 3),
        ("a/b", 1, 1, 2, 3),
        ("t", -1, 1, 2, 3),
        ("t", 1 << 64, 1, 2, 3),
        ("t", 1, 3, 2, 3),
        ("t", 1, -1, 2, 3),
        ("t", 1, 1, 2, 1 << 32),
    ],
)
def test_out_of_range_parts_are_rejected(
    tenant: str, fingerprint: int, from_ns: int, through_ns: int, checksum: int
) -> None:
    with pytest.raises(chunk_keys.ChunkKeyError):
        chunk_keys.chunk_key(tenant, fingerprint, from_ns, through_ns, checksum)


def test_chunk_checksum_is_crc32c_of_the_object() -> None:
    assert chunk_keys.chunk_checksum(b"123456789") == 0xE3069283  # the CRC-32C check value
