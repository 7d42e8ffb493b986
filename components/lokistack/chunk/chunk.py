"""``MemChunk``: a head block plus cut blocks, and the chunk's byte format.

The ingester appends to a MemChunk per stream, asks ``space_for`` before each entry to decide
when to start a new chunk (Loki's rule), closes and encodes it to flush, and snapshots it into
WAL checkpoints. The querier decodes stored chunks with ``MemChunk.decode``, which checks only
the header and index; each block's CRC is verified when that block is read, so a query that
needs one block of a chunk decompresses one block. Layout: docs/format/chunk.md.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import struct
from collections.abc import Iterable, Iterator
from typing import Final, Protocol

from lokistack.chunk import block, codec, head

DEFAULT_BLOCK_SIZE: Final = 262144  # Loki's chunk_block_size: uncompressed head size to cut at
DEFAULT_TARGET_SIZE: Final = 1572864  # Loki's chunk_target_size: compressed chunk size
BLOCKS_WITHOUT_TARGET: Final = 10  # Loki: with target_size 0, a chunk holds 10 blocks

MAGIC: Final = b"LKSC"
VERSION: Final = 1
_HEADER: Final = struct.Struct("<4sBBH")  # magic, version, codec byte, flags
_COUNT: Final = struct.Struct("<I")
_INDEX_ENTRY: Final = struct.Struct("<qqQIII")  # mint, maxt, offset, entries, clen, ulen
_CRC: Final = struct.Struct("<I")
_FOOTER: Final = struct.Struct("<QI4s")  # index offset, index length, magic
_MIN_SIZE: Final = _HEADER.size + _COUNT.size + _CRC.size + _FOOTER.size

_CHECKPOINT_MAGIC: Final = b"LKSP"
_CHECKPOINT_VERSION: Final = 1
_CHECKPOINT_HEADER: Final = struct.Struct("<4sBB2xII")  # magic, version, flags, sizes
_CHECKPOINT_CLOSED: Final = 1
_LENGTH: Final = struct.Struct("<I")

_ALL_TIME: Final = (-(1 << 63), 1 << 63)  # half-open: through is past every int64


class ChunkClosedError(ValueError):
    """An append to a chunk that has been closed (the stream must cut a new chunk)."""


class MemChunk:
    """A chunk being written (head + blocks) or read (decoded from bytes, closed)."""

    __slots__ = (
        "_block_size",
        "_blocks",
        "_blocks_compressed",
        "_blocks_entries",
        "_blocks_uncompressed",
        "_closed",
        "_encoded",
        "_encoding",
        "_head",
        "_target_size",
    )

    def __init__(
        self,
        encoding: codec.Encoding = codec.DEFAULT_ENCODING,
        block_size: int = DEFAULT_BLOCK_SIZE,
        target_size: int = DEFAULT_TARGET_SIZE,
    ) -> None:
        if block_size <= 0 or target_size < 0:
            raise ValueError("block_size must be positive and target_size not negative")
        self._encoding = codec.Encoding(encoding)
        self._block_size = block_size
        self._target_size = target_size
        self._blocks: list[block.Block] = []
        self._blocks_compressed = 0
        self._blocks_uncompressed = 0
        self._blocks_entries = 0
        self._head = head.HeadBlock()
        self._closed = False
        self._encoded: bytes | None = None

    # -- writing ------------------------------------------------------------------------------

    def append(self, ts: int, line: str, metadata: block.Metadata = block.NO_METADATA) -> bool:
        """Add an entry, cutting the head into a block once it reaches ``block_size``.

        ``False`` if the head already holds this exact entry (Loki drops it silently).
        """
        if self._closed:
            raise ChunkClosedError("chunk is closed")
        current = self._head
        if not current.append(ts, line, metadata):
            return False
        if current.uncompressed_size >= self._block_size:
            self._add_block(current.cut(self._encoding))
        return True

    def space_for(self, line_len: int, metadata_len: int) -> bool:
        """Whether an entry of this size still fits (Loki's ``SpaceFor``).

        ``metadata_len`` is the byte length of the entry's metadata names and values. The head
        counts uncompressed, because it is not compressed yet.
        """
        if self._target_size > 0:
            used = self._blocks_compressed + self._head.uncompressed_size
            return used + line_len + metadata_len < self._target_size
        return len(self._blocks) < BLOCKS_WITHOUT_TARGET

    def close(self) -> None:
        """Cut the head, put overlapping blocks back in time order, and freeze the chunk.

        Blocks overlap when out-of-order entries arrived; rewriting them once here lets every
        later reader of the stored chunk concatenate blocks instead of merging them.
        """
        if self._closed:
            return
        if len(self._head):
            self._add_block(self._head.cut(self._encoding))
        if _overlapping(self._blocks):
            self._rewrite_in_order()
        self._closed = True

    def _add_block(self, encoded: block.EncodedBlock) -> None:
        self._blocks.append(block.Block(encoded, self._encoding))
        self._blocks_compressed += encoded.compressed_size
        self._blocks_uncompressed += encoded.uncompressed_size
        self._blocks_entries += encoded.num_entries

    def _rewrite_in_order(self) -> None:
        """Re-cut all entries, merged in (ts, arrival) order, into blocks of ``block_size``."""
        entries = _merge(list(self._blocks), *_ALL_TIME, "forward")
        self._blocks = []
        self._blocks_compressed = self._blocks_uncompressed = self._blocks_entries = 0
        timestamps: list[int] = []
        lines: list[str] = []
        metadata: list[block.Metadata] = []
        size = 0
        for ts, line, pairs in entries:
            timestamps.append(ts)
            lines.append(line)
            metadata.append(pairs)
            size += len(line.encode("utf-8", "surrogatepass")) + 8 * len(pairs)
            if size >= self._block_size:
                self._add_block(block.encode_sorted(timestamps, lines, metadata, self._encoding))
                timestamps, lines, metadata, size = [], [], [], 0
        if timestamps:
            self._add_block(block.encode_sorted(timestamps, lines, metadata, self._encoding))

    # -- state --------------------------------------------------------------------------------

    @property
    def encoding(self) -> codec.Encoding:
        return self._encoding

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def target_size(self) -> int:
        return self._target_size

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def blocks(self) -> tuple[block.Block, ...]:
        return tuple(self._blocks)

    @property
    def head(self) -> head.HeadBlock:
        return self._head

    @property
    def num_entries(self) -> int:
        return self._blocks_entries + len(self._head)

    @property
    def mint(self) -> int:
        """The smallest timestamp in the chunk, 0 when it is empty."""
        values = [b.mint for b in self._blocks]
        if len(self._head):
            values.append(self._head.mint)
        return min(values, default=0)

    @property
    def maxt(self) -> int:
        """The largest timestamp in the chunk, 0 when it is empty."""
        values = [b.maxt for b in self._blocks]
        if len(self._head):
            values.append(self._head.maxt)
        return max(values, default=0)

    @property
    def compressed_size(self) -> int:
        """Compressed block bytes plus the head's uncompressed size (as Loki counts it)."""
        return self._blocks_compressed + self._head.uncompressed_size

    @property
    def uncompressed_size(self) -> int:
        """Uncompressed block payload bytes plus the head's uncompressed size."""
        return self._blocks_uncompressed + self._head.uncompressed_size

    @property
    def utilization(self) -> float:
        """``compressed_size / target_size`` (0 when there is no target), for sync cuts."""
        if self._target_size == 0:
            return 0.0
        return self.compressed_size / self._target_size

    # -- reading ------------------------------------------------------------------------------

    def iterate(
        self, from_ns: int, through_ns: int, direction: block.Direction = "forward"
    ) -> Iterator[block.Entry]:
        """Entries with ``from_ns <= ts < through_ns`` in (ts, arrival) order, or reversed.

        Blocks (and the head) that do not overlap each other are read one after another;
        otherwise they are merged with a heap. Each block is decompressed only when the
        iteration reaches it.
        """
        if through_ns <= from_ns:
            return iter(())
        sources: list[_Source] = [b for b in self._blocks if b.overlaps(from_ns, through_ns)]
        current = self._head
        if len(current) and current.mint < through_ns and current.maxt >= from_ns:
            # Taken now, so that appends and cuts while the caller iterates (across awaits in
            # the ingester) neither add entries nor lose the ones cut into a new block.
            sources.append(
                _HeadSnapshot(
                    current.mint, current.maxt, current.entries(from_ns, through_ns, direction)
                )
            )
        return _merge(sources, from_ns, through_ns, direction)

    def encode(self) -> bytes:
        """The chunk's bytes. Does not mutate: a non-empty head becomes a final block in the
        output each time (``close`` first to compress it once). Cached once closed."""
        if self._encoded is not None:
            return self._encoded
        blocks = [b.encoded for b in self._blocks]
        if len(self._head):
            blocks.append(self._head.encode(self._encoding))
        data = _encode(self._encoding, blocks)
        if self._closed:
            self._encoded = data
        return data

    def checksum(self) -> int:
        """CRC-32C of ``encode()``: part of the stored chunk's key."""
        return block.crc32c(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> MemChunk:
        """A closed chunk over stored bytes. Header, footer and index are checked now (raising
        ``ChunkCorruptError``); each block's CRC when the block is read."""
        encoding, blocks = _decode(data)
        chunk = cls(encoding)
        for encoded in blocks:
            chunk._add_block(encoded)
        chunk._closed = True
        return chunk

    # -- checkpoints --------------------------------------------------------------------------

    def to_checkpoint(self) -> bytes:
        """Cut blocks as encoded plus the head's entries, for a WAL checkpoint."""
        flags = _CHECKPOINT_CLOSED if self._closed else 0
        chunk_bytes = _encode(self._encoding, [b.encoded for b in self._blocks])
        head_bytes = self._head.to_bytes()
        data = b"".join(
            [
                _CHECKPOINT_HEADER.pack(
                    _CHECKPOINT_MAGIC,
                    _CHECKPOINT_VERSION,
                    flags,
                    self._block_size,
                    self._target_size,
                ),
                _LENGTH.pack(len(chunk_bytes)),
                chunk_bytes,
                _LENGTH.pack(len(head_bytes)),
                head_bytes,
            ]
        )
        return data + _CRC.pack(block.crc32c(data))

    @classmethod
    def from_checkpoint(cls, data: bytes) -> MemChunk:
        """Restore exactly what ``to_checkpoint`` saved."""
        if len(data) < _CHECKPOINT_HEADER.size + 2 * _LENGTH.size + _CRC.size:
            raise block.ChunkCorruptError("chunk checkpoint is truncated")
        (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
        if block.crc32c(data[: -_CRC.size]) != crc:
            raise block.ChunkCorruptError("chunk checkpoint checksum mismatch")
        magic, version, flags, block_size, target_size = _CHECKPOINT_HEADER.unpack_from(data)
        if magic != _CHECKPOINT_MAGIC or version != _CHECKPOINT_VERSION:
            raise block.ChunkCorruptError("not a version 1 chunk checkpoint")
        position = _CHECKPOINT_HEADER.size
        chunk_bytes, position = _read_sized(data, position)
        head_bytes, position = _read_sized(data, position)
        if position != len(data) - _CRC.size:
            raise block.ChunkCorruptError("chunk checkpoint has trailing bytes")
        encoding, blocks = _decode(chunk_bytes)
        chunk = cls(encoding, block_size, target_size)
        for encoded in blocks:
            chunk._add_block(encoded)
        chunk._head = head.HeadBlock.from_bytes(head_bytes)
        chunk._closed = bool(flags & _CHECKPOINT_CLOSED)
        return chunk


class _Source(Protocol):
    """What ``iterate`` merges: a block, or a snapshot of the head."""

    @property
    def mint(self) -> int: ...

    @property
    def maxt(self) -> int: ...

    def entries(
        self, from_ns: int, through_ns: int, direction: block.Direction
    ) -> Iterator[block.Entry]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _HeadSnapshot:
    """The head's entries for one query, selected when the query started."""

    mint: int
    maxt: int
    selected: Iterator[block.Entry]

    def entries(
        self, from_ns: int, through_ns: int, direction: block.Direction
    ) -> Iterator[block.Entry]:
        return self.selected


def _overlapping(spans: Iterable[_Source]) -> bool:
    """Whether consecutive sources overlap in time, so that concatenating them would not be in
    (ts, arrival) order. Equal boundary timestamps are fine: the earlier source came first."""
    return any(a.maxt > b.mint for a, b in itertools.pairwise(spans))


def _merge(
    sources: list[_Source],
    from_ns: int,
    through_ns: int,
    direction: block.Direction,
) -> Iterator[block.Entry]:
    backward = direction == "backward"
    if not _overlapping(sources):
        ordered = reversed(sources) if backward else sources
        return itertools.chain.from_iterable(
            source.entries(from_ns, through_ns, direction) for source in ordered
        )
    return _heap_merge(sources, from_ns, through_ns, backward)


def _heap_merge(
    sources: list[_Source], from_ns: int, through_ns: int, backward: bool
) -> Iterator[block.Entry]:
    """Merge overlapping sources by (ts, source rank). Sources are in arrival order, so this is
    (ts, arrival) order, and backward its exact reverse. Only one entry per source is in the
    heap at a time and ranks differ, so tuples never compare past the rank."""
    direction: block.Direction = "backward" if backward else "forward"
    ranked = [
        _ranked(source.entries(from_ns, through_ns, direction), rank)
        for rank, source in enumerate(sources)
    ]
    for ts, _rank, line, metadata in heapq.merge(*ranked, reverse=backward):
        yield ts, line, metadata


def _ranked(
    entries: Iterator[block.Entry], rank: int
) -> Iterator[tuple[int, int, str, block.Metadata]]:
    for ts, line, metadata in entries:
        yield ts, rank, line, metadata


def _encode(encoding: codec.Encoding, blocks: list[block.EncodedBlock]) -> bytes:
    header = _HEADER.pack(MAGIC, VERSION, codec.codec_byte(encoding), 0)
    parts = [header]
    entries = [_COUNT.pack(len(blocks))]
    offset = len(header)
    for encoded in blocks:
        parts.append(encoded.data)
        parts.append(_CRC.pack(encoded.crc))
        entries.append(
            _INDEX_ENTRY.pack(
                encoded.mint,
                encoded.maxt,
                offset,
                encoded.num_entries,
                len(encoded.data),
                encoded.uncompressed_size,
            )
        )
        offset += len(encoded.data) + _CRC.size
    index = b"".join(entries)
    parts.append(index)
    parts.append(_CRC.pack(block.crc32c(header + index)))
    parts.append(_FOOTER.pack(offset, len(index), MAGIC))
    return b"".join(parts)


def _decode(data: bytes) -> tuple[codec.Encoding, list[block.EncodedBlock]]:
    """Check header, footer and index, and slice out the blocks (their CRCs are not checked)."""
    corrupt = block.ChunkCorruptError
    if len(data) < _MIN_SIZE:
        raise corrupt(f"chunk is too short ({len(data)} bytes)")
    magic, version, codec_byte, flags = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise corrupt("not a chunk (bad magic)")
    index_offset, index_length, end_magic = _FOOTER.unpack_from(data, len(data) - _FOOTER.size)
    if end_magic != MAGIC:
        raise corrupt("chunk is truncated (bad footer magic)")
    index_end = index_offset + index_length
    if index_offset < _HEADER.size or index_end + _CRC.size + _FOOTER.size != len(data):
        raise corrupt("chunk index position is out of bounds")
    index = data[index_offset:index_end]
    (crc,) = _CRC.unpack_from(data, index_end)
    if block.crc32c(data[: _HEADER.size] + index) != crc:
        raise corrupt("chunk index checksum mismatch")
    if version != VERSION or flags != 0:
        raise corrupt(f"unsupported chunk version {version} or flags {flags:#x}")
    try:
        encoding = codec.encoding_for_byte(codec_byte)
    except ValueError as error:
        raise corrupt(str(error)) from None
    (count,) = _COUNT.unpack_from(index, 0)
    if index_length != _COUNT.size + count * _INDEX_ENTRY.size:
        raise corrupt("chunk index length does not match its block count")
    view = memoryview(data)
    blocks = []
    for mint, maxt, offset, entries, compressed, uncompressed in _INDEX_ENTRY.iter_unpack(
        index[_COUNT.size :]
    ):
        end = offset + compressed
        if offset < _HEADER.size or end + _CRC.size > index_offset or entries == 0 or mint > maxt:
            raise corrupt("chunk index entry is inconsistent")
        (block_crc,) = _CRC.unpack_from(data, end)
        blocks.append(
            block.EncodedBlock(
                data=bytes(view[offset:end]),
                crc=block_crc,
                num_entries=entries,
                mint=mint,
                maxt=maxt,
                uncompressed_size=uncompressed,
            )
        )
    return encoding, blocks


def _read_sized(data: bytes, position: int) -> tuple[bytes, int]:
    if position + _LENGTH.size > len(data):
        raise block.ChunkCorruptError("chunk checkpoint is truncated")
    (length,) = _LENGTH.unpack_from(data, position)
    start = position + _LENGTH.size
    if start + length > len(data):
        raise block.ChunkCorruptError("chunk checkpoint is truncated")
    return data[start : start + length], start + length
