"""Object keys of chunks: ``<tenant>/chunks/<fingerprint>/<from>-<through>-<checksum>``.

The key carries everything needed to find and trust a chunk without opening it: the tenant (so a
tenant's data is one prefix), the stream, the time bounds (so a listing can be filtered by time)
and the CRC32C (so replicas that cut identical chunks write the same key, and a ref in the index
names exactly one sequence of bytes). docs/format/storage.md fixes the format; this module is the
only code that builds or splits it, and it accepts only the canonical spelling so that a parsed
key always rebuilds to the same string.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

import google_crc32c

from lokistack.model import tenant as tenant_ids

CHUNKS_SEGMENT: Final = "chunks"
MAX_U64: Final = (1 << 64) - 1
MAX_U32: Final = (1 << 32) - 1
MAX_I64: Final = (1 << 63) - 1

_TIME: Final = r"(0|[1-9a-f][0-9a-f]{0,15})"
_LAST_SEGMENT: Final = re.compile(_TIME + "-" + _TIME + r"-([0-9a-f]{8})")
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{16}")


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkKey:
    """The parts of a chunk key."""

    tenant: str
    fingerprint: int
    from_ns: int
    through_ns: int
    checksum: int

    def __str__(self) -> str:
        return chunk_key(
            self.tenant, self.fingerprint, self.from_ns, self.through_ns, self.checksum
        )


class ChunkKeyError(ValueError):
    """A string that is not a canonical chunk key."""


def _check_tenant(tenant: str) -> None:
    try:
        valid = tenant_ids.validate_tenant_id(tenant) == tenant
    except tenant_ids.TenantError as err:
        raise ChunkKeyError(f"invalid tenant in chunk key: {err.message}") from None
    if not valid or not tenant:
        raise ChunkKeyError(f"invalid tenant in chunk key: {tenant!r}")


def chunk_key(tenant: str, fingerprint: int, from_ns: int, through_ns: int, checksum: int) -> str:
    """The object key of a chunk; raises :class:`ChunkKeyError` for values out of range."""
    _check_tenant(tenant)
    if not 0 <= fingerprint <= MAX_U64:
        raise ChunkKeyError(f"fingerprint out of range: {fingerprint}")
    if not 0 <= from_ns <= through_ns <= MAX_I64:
        raise ChunkKeyError(f"invalid chunk bounds: from {from_ns}, through {through_ns}")
    if not 0 <= checksum <= MAX_U32:
        raise ChunkKeyError(f"checksum out of range: {checksum}")
    return f"{tenant}/{CHUNKS_SEGMENT}/{fingerprint:016x}/{from_ns:x}-{through_ns:x}-{checksum:08x}"


def parse_chunk_key(key: str) -> ChunkKey:
    """Split a canonical chunk key; raises :class:`ChunkKeyError` for anything else."""
    parts = key.split("/")
    if len(parts) != 4 or parts[1] != CHUNKS_SEGMENT:
        raise ChunkKeyError(f"not a chunk key: {key!r}")
    tenant, _, fingerprint_hex, last = parts
    _check_tenant(tenant)
    if not _FINGERPRINT.fullmatch(fingerprint_hex):
        raise ChunkKeyError(f"bad fingerprint in chunk key: {key!r}")
    match = _LAST_SEGMENT.fullmatch(last)
    if match is None:
        raise ChunkKeyError(f"bad <from>-<through>-<checksum> in chunk key: {key!r}")
    from_ns, through_ns = int(match[1], 16), int(match[2], 16)
    if not from_ns <= through_ns <= MAX_I64:
        raise ChunkKeyError(f"invalid chunk bounds in chunk key: {key!r}")
    return ChunkKey(tenant, int(fingerprint_hex, 16), from_ns, through_ns, int(match[3], 16))


def chunk_checksum(data: bytes) -> int:
    """The key's checksum of a chunk object: CRC32C of all its bytes, as stored."""
    return int(google_crc32c.value(data))


def stream_prefix(tenant: str, fingerprint: int) -> str:
    """The prefix under which every chunk of one stream lives (for listing and retention)."""
    _check_tenant(tenant)
    return f"{tenant}/{CHUNKS_SEGMENT}/{fingerprint:016x}/"
