"""Fingerprints (BLAKE2b-64) and ring tokens (Loki's FNV-1 32 TokenFor)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.model import fingerprint


def _reference_fnv1_32(data: bytes) -> int:
    """FNV-1 written out from the definition, independently of the module."""
    value = 0x811C9DC5
    for byte in data:
        value = (value * 0x01000193) % 2**32
        value = value ^ byte
    return value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 2166136261),
        (b"a", 0x050C5D7E),
        (b"foobar", 0x31F0B262),  # published FNV-1 test vector (FNV-1a would be 0xbf9cf968)
    ],
)
def test_fnv1_32_vectors(data: bytes, expected: int) -> None:
    assert fingerprint.fnv1_32(data) == expected
    assert _reference_fnv1_32(data) == expected


def test_ring_token_is_fnv1_over_tenant_then_labels_without_separator() -> None:
    canonical = '{app="api", service_name="api"}'
    expected = _reference_fnv1_32(b"tenant-1" + canonical.encode())
    assert fingerprint.ring_token("tenant-1", canonical) == expected
    assert fingerprint.ring_token("fake", "{}") == _reference_fnv1_32(b"fake{}")


def test_ring_token_of_unicode_uses_utf8() -> None:
    assert fingerprint.ring_token("t", '{a="é"}') == _reference_fnv1_32('t{a="é"}'.encode())


@given(st.text(max_size=20), st.text(max_size=60))
def test_ring_token_matches_reference(tenant: str, canonical: str) -> None:
    token = fingerprint.ring_token(tenant, canonical)
    assert token == _reference_fnv1_32((tenant + canonical).encode())
    assert 0 <= token < 2**32


def test_fingerprint_is_blake2b_64_big_endian() -> None:
    canonical = '{app="api"}'
    digest = hashlib.blake2b(canonical.encode(), digest_size=8).digest()
    assert fingerprint.fingerprint(canonical) == int.from_bytes(digest, "big")
    # Frozen values: changing them would orphan every stored chunk and index row.
    assert fingerprint.fingerprint("{}") == 0x01E7B720FF566D53
    assert fingerprint.fingerprint(canonical) == int.from_bytes(digest, "big")


@given(st.text(max_size=60))
def test_fingerprint_is_unsigned_64_bit(canonical: str) -> None:
    value = fingerprint.fingerprint(canonical)
    assert 0 <= value < 2**64
    assert value == fingerprint.fingerprint(canonical)
