"""Hashes of a stream's canonical label string (docs/format/labels.md).

Two hashes with two jobs: the *fingerprint* names a stream in storage (chunk keys, index rows,
WAL series records), so it is wide (64 bits) and only has to be stable across our own releases;
the *ring token* places a stream on the ring, so it is Loki's exact FNV-1 32-bit ``TokenFor`` and
a stream lands where Loki would put it.
"""

from __future__ import annotations

import hashlib
from typing import Final

FNV32_OFFSET: Final = 2166136261
FNV32_PRIME: Final = 16777619
_MASK32: Final = 0xFFFFFFFF


def fingerprint(canonical_labels: str) -> int:
    """The 64-bit unsigned fingerprint: BLAKE2b-64 of the UTF-8 bytes, read big-endian."""
    digest = hashlib.blake2b(canonical_labels.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def fnv1_32(data: bytes, seed: int = FNV32_OFFSET) -> int:
    """FNV-1 (multiply, then XOR; not FNV-1a) 32-bit over ``data``, continuing from ``seed``."""
    value = seed
    for byte in data:
        value = ((value * FNV32_PRIME) & _MASK32) ^ byte
    return value


def ring_token(tenant: str, canonical_labels: str) -> int:
    """Loki's ``TokenFor``: FNV-1 32 over the tenant then the labels, with no separator."""
    return fnv1_32(canonical_labels.encode("utf-8"), fnv1_32(tenant.encode("utf-8")))
