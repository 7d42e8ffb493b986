"""The head block: the uncompressed, appendable end of a chunk.

``append`` runs once per pushed entry, so it does as little as Python allows: in the common case
(a timestamp newer than any in the head) three appends to parallel sequences and a size update.
Entries may arrive in any time order; they are sorted once, at cut time, by (timestamp, arrival
order), with C-level ``sorted`` over indexes. Duplicate detection (Loki's rule: same timestamp,
line and metadata as an entry already in the head) needs no work for in-order entries, a small
set for runs of equal timestamps, and a timestamp index that is built only once the head has
received an out-of-order entry.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Iterator
from typing import Final

from lokistack.chunk import block, codec

_SNAPSHOT_MAGIC: Final = b"LKSH"
_SNAPSHOT_VERSION: Final = 1
_SNAPSHOT_HEADER: Final = struct.Struct("<4sB3x")
_CRC: Final = struct.Struct("<I")
_METADATA_PAIR_SIZE: Final = 8  # Loki counts each structured-metadata pair as 8 bytes
_NO_MAXT: Final = -(1 << 63) - 1  # below every int64: "no maxt yet"

_Key = tuple[str, block.Metadata]


def _utf8_len(line: str) -> int:
    return len(line.encode("utf-8", "surrogatepass"))


class HeadBlock:
    """Entries not yet cut into a block, in arrival order, with Loki's size accounting."""

    __slots__ = (
        "_by_ts",
        "_lines",
        "_maxt",
        "_metadata",
        "_mint",
        "_pairs",
        "_sorted",
        "_tail",
        "_tail_ts",
        "_timestamps",
        "uncompressed_size",
    )

    uncompressed_size: int
    """``Σ UTF-8 line bytes + 8 * metadata pairs``: Loki's measure, which triggers a cut. A plain
    attribute rather than a property because ``MemChunk.append`` reads it for every entry;
    treat it as read-only."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._timestamps = array("q")
        self._lines: list[str] = []
        self._metadata: list[block.Metadata] = []
        self.uncompressed_size = 0
        self._pairs = 0
        self._mint = 0  # kept once the head is out of order; see ``mint``
        self._maxt = _NO_MAXT
        # Duplicate detection. While the head is in order, only entries at maxt can equal a new
        # entry at maxt: ``_tail`` holds their (line, metadata) keys, built when first needed.
        # After the first out-of-order entry, ``_by_ts`` maps each timestamp to the position of
        # its only entry, or to the set of keys of its entries when it has several.
        self._tail: set[_Key] | None = None
        self._tail_ts = _NO_MAXT
        self._by_ts: dict[int, int | set[_Key]] | None = None
        # (entry count, sort order, sorted timestamps) for querying an out-of-order head.
        self._sorted: tuple[int, list[int], array[int]] | None = None

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def mint(self) -> int:
        """The smallest timestamp in the head, 0 when it is empty."""
        if not self._timestamps:
            return 0
        # While in order the first entry is the oldest; ``_mint`` is kept only after that.
        return self._timestamps[0] if self._by_ts is None else self._mint

    @property
    def maxt(self) -> int:
        """The largest timestamp in the head, 0 when it is empty."""
        return self._maxt if self._timestamps else 0

    @property
    def ordered(self) -> bool:
        """Whether entries arrived in time order (then cutting needs no sort)."""
        return self._by_ts is None

    def append(self, ts: int, line: str, metadata: block.Metadata = block.NO_METADATA) -> bool:
        """Add an entry; ``False`` (and nothing stored) if it duplicates one in the head.

        ``ts`` must fit in int64 (``OverflowError`` otherwise, before anything is stored).
        """
        if ts > self._maxt:
            self._timestamps.append(ts)  # first: an OverflowError leaves the head unchanged
            self._maxt = ts
            if self._by_ts is not None:
                self._by_ts[ts] = len(self._timestamps) - 1
        elif self._is_duplicate(ts, line, metadata):
            return False
        else:
            self._timestamps.append(ts)
        self._lines.append(line)
        self._metadata.append(metadata)
        if metadata:
            self._pairs += len(metadata)
            self.uncompressed_size += _METADATA_PAIR_SIZE * len(metadata)
        self.uncompressed_size += len(line) if line.isascii() else _utf8_len(line)
        return True

    def _is_duplicate(self, ts: int, line: str, metadata: block.Metadata) -> bool:
        """For ``ts <= maxt``: whether the entry is a duplicate; if not, register it."""
        if ts < -(1 << 63):
            raise OverflowError("timestamp does not fit in int64")
        key = (line, metadata)
        index = self._by_ts
        if index is None:
            if ts == self._maxt:
                return self._tail_duplicate(key)
            index = self._build_index()
        self._mint = min(self._mint, ts)
        found = index.get(ts)
        if found is None:
            index[ts] = len(self._timestamps)
            return False
        if isinstance(found, int):
            found = {(self._lines[found], self._metadata[found])}
            index[ts] = found
        if key in found:
            return True
        found.add(key)
        return False

    def _tail_duplicate(self, key: _Key) -> bool:
        tail = self._tail
        if tail is None or self._tail_ts != self._maxt:
            tail = set()
            timestamps, lines, metadata = self._timestamps, self._lines, self._metadata
            position = len(timestamps) - 1
            while position >= 0 and timestamps[position] == self._maxt:
                tail.add((lines[position], metadata[position]))
                position -= 1
            self._tail = tail
            self._tail_ts = self._maxt
        if key in tail:
            return True
        tail.add(key)
        return False

    def _build_index(self) -> dict[int, int | set[_Key]]:
        """Index every entry by timestamp: done once, when the first out-of-order entry comes."""
        index: dict[int, int | set[_Key]] = {}
        lines, metadata = self._lines, self._metadata
        for position, ts in enumerate(self._timestamps):
            found = index.get(ts)
            if found is None:
                index[ts] = position
            elif isinstance(found, int):
                index[ts] = {(lines[found], metadata[found]), (lines[position], metadata[position])}
            else:
                found.add((lines[position], metadata[position]))
        self._by_ts = index
        self._tail = None
        self._mint = self._timestamps[0]  # the head was in order until now
        return index

    def _sort(self) -> tuple[list[int], array[int]]:
        """Stable sort order and sorted timestamps of an out-of-order head, cached until the
        next append (queries on a busy head then sort at most once per change)."""
        count = len(self._timestamps)
        cached = self._sorted
        if cached is not None and cached[0] == count:
            return cached[1], cached[2]
        timestamps = self._timestamps
        order = sorted(range(count), key=timestamps.__getitem__)
        sorted_ts = array("q", map(timestamps.__getitem__, order))
        self._sorted = (count, order, sorted_ts)
        return order, sorted_ts

    def entries(
        self, from_ns: int, through_ns: int, direction: block.Direction = "forward"
    ) -> Iterator[block.Entry]:
        """Entries with ``from_ns <= ts < through_ns`` in (ts, arrival) order, or reversed.

        The selected entries are copied (with C-level slices and maps) when this is called, so
        the iterator is unaffected by later appends and cuts.
        """
        if through_ns <= from_ns or not self._timestamps:
            return iter(())
        timestamps: array[int]
        lines: list[str]
        metadata: list[block.Metadata]
        if self._by_ts is None:
            low = bisect.bisect_left(self._timestamps, from_ns)
            high = bisect.bisect_left(self._timestamps, through_ns)
            timestamps = self._timestamps[low:high]
            lines = self._lines[low:high]
            metadata = self._metadata[low:high]
        else:
            order, sorted_ts = self._sort()
            low = bisect.bisect_left(sorted_ts, from_ns)
            high = bisect.bisect_left(sorted_ts, through_ns)
            selected = order[low:high]
            timestamps = sorted_ts[low:high]
            lines = list(map(self._lines.__getitem__, selected))
            metadata = list(map(self._metadata.__getitem__, selected))
        if direction == "backward":
            timestamps.reverse()
            lines.reverse()
            metadata.reverse()
        return zip(timestamps, lines, metadata, strict=True)

    def encode(self, encoding: codec.Encoding) -> block.EncodedBlock:
        """The block ``cut`` would produce, leaving the head as it is."""
        if not self._timestamps:
            raise ValueError("cannot encode an empty head block")
        metadata: list[block.Metadata] | None = self._metadata if self._pairs else None
        if self._by_ts is None:
            return block.encode_sorted(self._timestamps, self._lines, metadata, encoding)
        order, sorted_ts = self._sort()
        return block.encode_sorted(
            sorted_ts,
            list(map(self._lines.__getitem__, order)),
            None if metadata is None else list(map(metadata.__getitem__, order)),
            encoding,
        )

    def cut(self, encoding: codec.Encoding) -> block.EncodedBlock:
        """Sort, encode and compress the entries into a block, and empty the head.

        The head's containers are replaced rather than cleared, so iterators handed out by
        ``entries`` before the cut stay valid.
        """
        encoded = self.encode(encoding)
        self._reset()
        return encoded

    def to_bytes(self) -> bytes:
        """A snapshot of the entries in arrival order (docs/format/chunk.md, "Head snapshot")."""
        payload = block.encode_payload(
            self._timestamps, self._lines, self._metadata if self._pairs else None
        )
        data = _SNAPSHOT_HEADER.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION) + payload
        return data + _CRC.pack(block.crc32c(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> HeadBlock:
        """Restore a snapshot: the same entries in the same arrival order."""
        minimum = _SNAPSHOT_HEADER.size + _CRC.size
        if len(data) < minimum:
            raise block.ChunkCorruptError("head snapshot is truncated")
        magic, version = _SNAPSHOT_HEADER.unpack_from(data, 0)
        if magic != _SNAPSHOT_MAGIC:
            raise block.ChunkCorruptError("not a head snapshot (bad magic)")
        (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
        if block.crc32c(data[: -_CRC.size]) != crc:
            raise block.ChunkCorruptError("head snapshot checksum mismatch")
        if version != _SNAPSHOT_VERSION:
            raise block.ChunkCorruptError(f"unsupported head snapshot version {version}")
        decoded = block.DecodedBlock(data[_SNAPSHOT_HEADER.size : -_CRC.size])
        head = cls()
        for ts, line, metadata in decoded.iter_indexes(range(len(decoded))):
            head.append(ts, line, metadata)
        return head
