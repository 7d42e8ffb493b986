"""Typed WAL records and the batch payload that carries them (docs/format/wal.md "Batch payload").

Entries are stored in a bulk layout: one packed array of timestamps, one packed array of line
lengths and the concatenated lines. That way a 100-entry record is encoded and decoded by a few
C calls (``array.tobytes``/``frombytes``, ``bytes.join``) rather than a Python loop per entry.
Decoded lines are materialised only when asked for (``EntriesRecord.lines``). A replaying
ingester that appends ``lines_blob`` to a head block never pays for per-line ``str`` objects.
"""

from __future__ import annotations

import array
import dataclasses
import itertools
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

from lokistack.proto import push_pb2

SERIES: Final = 1
ENTRIES: Final = 2
CHECKPOINT_STREAM: Final = 3
CHECKPOINT_END: Final = 4

_NS_PER_SECOND: Final = 1_000_000_000
_FLAG_METADATA: Final = 1
_SWAP: Final = sys.byteorder != "little"  # the format is little-endian; arrays are native

_RECORD_HEAD: Final = struct.Struct("<BI")
_STR16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_SERIES_FIXED: Final = struct.Struct("<Q")
_ENTRIES_FIXED: Final = struct.Struct("<QQIBI")
_CHECKPOINT_FIXED: Final = struct.Struct("<QQ")
_END: Final = struct.Struct("<QQ")

Metadata: TypeAlias = tuple[tuple[str, str], ...]


class DecodeError(ValueError):
    """A payload that passed its checksum but does not follow the record layout."""


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _str16(value: str) -> bytes:
    raw = _text(value)
    return _STR16.pack(len(raw)) + raw


def _str32(value: str) -> bytes:
    raw = _text(value)
    return _U32.pack(len(raw)) + raw


def _le(values: array.array[int]) -> bytes:
    if _SWAP:
        values = array.array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


@dataclasses.dataclass(frozen=True, slots=True)
class SeriesRecord:
    """A stream's identity; logged before the stream's first entries in each segment."""

    tenant: str
    fingerprint: int
    labels: str


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointStreamRecord:
    """One in-memory stream at checkpoint time; ``payload`` (its chunks) is the ingester's."""

    tenant: str
    fingerprint: int
    labels: str
    payload: bytes
    entry_count: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointEndRecord:
    """Closes a checkpoint: the stream count proves it complete, live_segment bounds dedup."""

    streams: int
    live_segment: int


class EntriesRecord:
    """One stream's entries from one push, kept in the on-disk bulk layout.

    ``counter`` is the stream's entry counter after this batch (0 = none). Replay uses it to drop
    entries the checkpoint already holds.
    """

    __slots__ = (
        "_lines",
        "counter",
        "fingerprint",
        "line_lengths",
        "lines_blob",
        "raw_metadata",
        "tenant",
        "timestamps",
    )

    def __init__(
        self,
        tenant: str,
        fingerprint: int,
        timestamps: array.array[int],
        line_lengths: array.array[int],
        lines_blob: bytes,
        *,
        metadata: Sequence[Metadata] | None = None,
        counter: int = 0,
    ) -> None:
        if len(timestamps) != len(line_lengths):
            raise ValueError("timestamps and line_lengths differ in length")
        if metadata is not None and len(metadata) != len(timestamps):
            raise ValueError("metadata must have one tuple per entry")
        self.tenant = tenant
        self.fingerprint = fingerprint
        self.timestamps = timestamps
        self.line_lengths = line_lengths
        self.lines_blob = lines_blob
        self.raw_metadata = None if metadata is None or not any(metadata) else list(metadata)
        self.counter = counter
        self._lines: list[str] | None = None

    @classmethod
    def from_entries(
        cls,
        tenant: str,
        fingerprint: int,
        timestamps: Iterable[int],
        lines: Sequence[str],
        *,
        metadata: Sequence[Metadata] | None = None,
        counter: int = 0,
    ) -> EntriesRecord:
        """Build from parallel sequences (for example the entries an ingester accepted).

        An ``array('q')`` of timestamps is taken over, not copied. The ``str`` lines are kept, so
        ``lines`` costs nothing on the logging side.
        """
        joined = "".join(lines)
        blob = _text(joined)
        if len(blob) == len(joined):  # all ASCII: character counts are byte counts
            lengths = array.array("I", map(len, lines))
        else:
            encoded = [_text(line) for line in lines]
            lengths = array.array("I", map(len, encoded))
        stamps = timestamps
        if not isinstance(stamps, array.array) or stamps.typecode != "q":
            stamps = array.array("q", timestamps)
        record = cls(tenant, fingerprint, stamps, lengths, blob, metadata=metadata, counter=counter)
        record._lines = list(lines)
        return record

    @classmethod
    def from_stream(
        cls, tenant: str, fingerprint: int, stream: push_pb2.StreamAdapter, counter: int = 0
    ) -> EntriesRecord:
        """The fast constructor for a whole pushed stream: one pass over the protobuf entries."""
        entries = stream.entries
        timestamps = array.array("q")
        add_timestamp = timestamps.append
        lines: list[str] = []
        add_line = lines.append
        has_metadata = False
        for entry in entries:
            moment = entry.timestamp
            add_timestamp(moment.seconds * _NS_PER_SECOND + moment.nanos)
            add_line(entry.line)
            if not has_metadata and entry.structuredMetadata:
                has_metadata = True
        metadata: list[Metadata] | None = None
        if has_metadata:
            metadata = [
                tuple((pair.name, pair.value) for pair in entry.structuredMetadata)
                for entry in entries
            ]
        return cls.from_entries(
            tenant, fingerprint, timestamps, lines, metadata=metadata, counter=counter
        )

    def __len__(self) -> int:
        return len(self.timestamps)

    def __repr__(self) -> str:
        return (
            f"EntriesRecord(tenant={self.tenant!r}, fingerprint={self.fingerprint:#x}, "
            f"entries={len(self)}, counter={self.counter})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntriesRecord):
            return NotImplemented
        return (
            self.tenant == other.tenant
            and self.fingerprint == other.fingerprint
            and self.counter == other.counter
            and self.timestamps == other.timestamps
            and self.line_lengths == other.line_lengths
            and self.lines_blob == other.lines_blob
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def lines(self) -> list[str]:
        """The lines as ``str``, decoded on first use and cached."""
        if self._lines is None:
            ends = list(itertools.accumulate(self.line_lengths))
            starts = [0, *ends[:-1]]
            blob = self.lines_blob
            if blob.isascii():
                text = blob.decode("ascii")
                self._lines = list(map(text.__getitem__, map(slice, starts, ends)))
            else:
                pieces = map(blob.__getitem__, map(slice, starts, ends))
                self._lines = [piece.decode("utf-8", "surrogateescape") for piece in pieces]
        return self._lines

    @property
    def metadata(self) -> list[Metadata]:
        """Structured metadata per entry; empty tuples when the push carried none."""
        if self.raw_metadata is None:
            return [()] * len(self.timestamps)
        return self.raw_metadata

    def drop_first(self, count: int) -> EntriesRecord:
        """The same batch without its first ``count`` entries (replay trims duplicates so)."""
        skipped = sum(self.line_lengths[:count])
        metadata = None if self.raw_metadata is None else self.raw_metadata[count:]
        trimmed = EntriesRecord(
            self.tenant,
            self.fingerprint,
            self.timestamps[count:],
            self.line_lengths[count:],
            self.lines_blob[skipped:],
            metadata=metadata,
            counter=self.counter,
        )
        if self._lines is not None:
            trimmed._lines = self._lines[count:]
        return trimmed

    def encode_parts(self) -> list[bytes]:
        """The record body as pieces for one ``bytes.join`` (no per-entry work without SM)."""
        count = len(self.timestamps)
        flags = _FLAG_METADATA if self.raw_metadata is not None else 0
        fixed = _ENTRIES_FIXED.pack(
            self.fingerprint, self.counter, count, flags, len(self.lines_blob)
        )
        parts = [
            _str16(self.tenant),
            fixed,
            _le(self.timestamps),
            _le(self.line_lengths),
            self.lines_blob,
        ]
        if self.raw_metadata is not None:
            parts.extend(_encode_metadata(self.raw_metadata))
        return parts


def _encode_metadata(metadata: Sequence[Metadata]) -> list[bytes]:
    pair_counts = array.array("H", map(len, metadata))
    strings = [_text(text) for pairs in metadata for pair in pairs for text in pair]
    lengths = array.array("I", map(len, strings))
    return [_U32.pack(len(strings) // 2), _le(pair_counts), _le(lengths), b"".join(strings)]


Record: TypeAlias = SeriesRecord | EntriesRecord | CheckpointStreamRecord | CheckpointEndRecord


def encode_batch(records: Iterable[Record]) -> bytes:
    """The payload of one frame: each record as type, body length, body."""
    parts: list[bytes] = []
    for item in records:
        if isinstance(item, EntriesRecord):
            kind, body = ENTRIES, item.encode_parts()
        elif isinstance(item, SeriesRecord):
            body = [_str16(item.tenant), _SERIES_FIXED.pack(item.fingerprint), _str32(item.labels)]
            kind = SERIES
        elif isinstance(item, CheckpointStreamRecord):
            fixed = _CHECKPOINT_FIXED.pack(item.fingerprint, item.entry_count)
            body = [_str16(item.tenant), fixed, _str32(item.labels)]
            body += [_U32.pack(len(item.payload)), item.payload]
            kind = CHECKPOINT_STREAM
        else:
            kind, body = CHECKPOINT_END, [_END.pack(item.streams, item.live_segment)]
        parts.append(_RECORD_HEAD.pack(kind, sum(map(len, body))))
        parts.extend(body)
    return b"".join(parts)


class _Cursor:
    """Reads fields off one record body, raising DecodeError on any overrun."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.pos, self.end = data, start, end

    def take(self, size: int) -> bytes:
        start = self.pos
        if size < 0 or start + size > self.end:
            raise DecodeError("record body is shorter than its fields")
        self.pos = start + size
        return self.data[start : self.pos]

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size))

    def str16(self) -> str:
        return self.take(self.unpack(_STR16)[0]).decode("utf-8", "surrogateescape")

    def str32(self) -> str:
        return self.take(self.unpack(_U32)[0]).decode("utf-8", "surrogateescape")

    def array(self, typecode: str, count: int) -> array.array[int]:
        values = array.array(typecode)
        values.frombytes(self.take(count * values.itemsize))
        if _SWAP:
            values.byteswap()
        return values


def _decode_entries(cursor: _Cursor) -> EntriesRecord:
    tenant = cursor.str16()
    fingerprint, counter, count, flags, lines_size = cursor.unpack(_ENTRIES_FIXED)
    timestamps = cursor.array("q", count)
    lengths = cursor.array("I", count)
    if sum(lengths) != lines_size:
        raise DecodeError("line lengths do not add up to the lines size")
    blob = cursor.take(lines_size)
    metadata: list[Metadata] | None = None
    if flags & _FLAG_METADATA:
        (pairs,) = cursor.unpack(_U32)
        pair_counts = cursor.array("H", count)
        if sum(pair_counts) != pairs:
            raise DecodeError("metadata pair counts do not add up")
        string_lengths = cursor.array("I", 2 * pairs)
        strings = [cursor.take(size).decode("utf-8", "surrogateescape") for size in string_lengths]
        pair_iter = zip(strings[0::2], strings[1::2], strict=True)
        metadata = [tuple(itertools.islice(pair_iter, n)) for n in pair_counts]
    return EntriesRecord(
        tenant, fingerprint, timestamps, lengths, blob, metadata=metadata, counter=counter
    )


def decode_batch(payload: bytes) -> list[Record]:
    """The records of one frame's payload; DecodeError if any of them is malformed."""
    records: list[Record] = []
    offset, size = 0, len(payload)
    while offset < size:
        if offset + _RECORD_HEAD.size > size:
            raise DecodeError("truncated record header")
        kind, length = _RECORD_HEAD.unpack_from(payload, offset)
        start = offset + _RECORD_HEAD.size
        offset = start + length
        if offset > size:
            raise DecodeError("record body runs past the batch")
        cursor = _Cursor(payload, start, offset)
        item: Record
        if kind == ENTRIES:
            item = _decode_entries(cursor)
        elif kind == SERIES:
            tenant = cursor.str16()
            (fingerprint,) = cursor.unpack(_SERIES_FIXED)
            item = SeriesRecord(tenant, fingerprint, cursor.str32())
        elif kind == CHECKPOINT_STREAM:
            tenant = cursor.str16()
            fingerprint, entry_count = cursor.unpack(_CHECKPOINT_FIXED)
            labels = cursor.str32()
            payload_bytes = cursor.take(cursor.unpack(_U32)[0])
            item = CheckpointStreamRecord(tenant, fingerprint, labels, payload_bytes, entry_count)
        elif kind == CHECKPOINT_END:
            streams, live_segment = cursor.unpack(_END)
            item = CheckpointEndRecord(streams, live_segment)
        else:
            raise DecodeError(f"unknown record type {kind}")
        if cursor.pos != cursor.end:
            raise DecodeError(f"record type {kind} has {cursor.end - cursor.pos} trailing bytes")
        records.append(item)
    if not records:
        raise DecodeError("empty batch")
    return records
