"""One block: a column-wise payload of sorted entries, compressed as a whole.

The payload (docs/format/chunk.md, "Block payload") stores timestamps, line offsets and the
concatenated lines as separate packed sections. Decoding is therefore a decompression plus a few
``array.frombytes`` copies, whatever the number of entries; Python objects are created only for
the entries a caller asks for. ``DecodedBlock.find_literal`` runs ``bytes.find`` over all lines
at once and maps hits back to entries by bisection, so non-matching lines cost no Python work.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Literal

import google_crc32c

from lokistack.chunk import codec

Metadata = tuple[tuple[str, str], ...]
"""Structured metadata of one entry: ``(name, value)`` pairs in the order they were given."""

Entry = tuple[int, str, Metadata]
"""``(timestamp ns, line, metadata)``, as iterators yield them."""

Direction = Literal["forward", "backward"]

NO_METADATA: Final[Metadata] = ()

_HEADER = struct.Struct("<IIII")  # entry count, flags, pair count, symbol count
_FLAG_METADATA: Final = 1
_BIG_ENDIAN: Final = sys.byteorder == "big"
_TEXT_ERRORS: Final = "surrogatepass"  # any Python str encodes; see docs/format/chunk.md


class ChunkCorruptError(ValueError):
    """Stored chunk bytes are invalid: bad magic, version, codec, checksum, bounds or lengths."""


class BlockCorruptError(ChunkCorruptError):
    """A block's checksum does not match, or its payload does not decode."""


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (hardware-accelerated; ~31 GB/s, so checking blocks is free)."""
    return int(google_crc32c.value(data))


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedBlock:
    """A cut block: its compressed payload and the facts the chunk index records about it."""

    data: bytes
    crc: int
    num_entries: int
    mint: int
    maxt: int
    uncompressed_size: int

    @property
    def compressed_size(self) -> int:
        return len(self.data)


def _to_array(typecode: str, values: Iterable[int]) -> array[int]:
    """A packed array, reused as is when it already has the right type."""
    if isinstance(values, array) and values.typecode == typecode:
        return values
    return array(typecode, values)


def _le_bytes(values: array[int]) -> bytes:
    """The array's bytes in little-endian order, as the format stores them."""
    if _BIG_ENDIAN:  # pragma: no cover - every supported platform is little-endian
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _encode_lines(lines: Sequence[bytes | str]) -> tuple[bytes, array[int]]:
    """The concatenated UTF-8 lines and their N+1 offsets, without a Python loop when possible.

    For the common case of ``str`` lines that are all ASCII, one join plus one encode gives the
    bytes and ``len`` gives byte lengths; only non-ASCII text needs encoding line by line.
    """
    offsets = array("I", [0])
    if not lines:
        return b"", offsets
    if isinstance(lines[0], str):
        text = "".join(lines)  # type: ignore[arg-type]  # mixed sequences fail loudly here
        if text.isascii():
            offsets.extend(itertools.accumulate(map(len, lines)))
            return text.encode("ascii"), offsets
        encoded: list[bytes] = [
            line.encode("utf-8", _TEXT_ERRORS) if isinstance(line, str) else line for line in lines
        ]
    else:
        encoded = [
            line.encode("utf-8", _TEXT_ERRORS) if isinstance(line, str) else bytes(line)
            for line in lines
        ]
    offsets.extend(itertools.accumulate(map(len, encoded)))
    return b"".join(encoded), offsets


def _encode_metadata(metadata: Sequence[Metadata], count: int) -> tuple[list[bytes], int, int]:
    """The metadata sections (pair offsets, pair symbols, symbol table) and P and S.

    Entries without metadata are skipped at C speed (``filter``); only pairs cost Python work.
    """
    if len(metadata) != count:
        raise ValueError(f"{len(metadata)} metadata tuples for {count} entries")
    pair_offsets = array("I", [0])
    pair_offsets.extend(itertools.accumulate(map(len, metadata)))
    symbols: dict[str, int] = {}
    pair_symbols = array("I")
    for pairs in filter(None, metadata):
        for name, value in pairs:
            pair_symbols.append(symbols.setdefault(name, len(symbols)))
            pair_symbols.append(symbols.setdefault(value, len(symbols)))
    encoded = [symbol.encode("utf-8", _TEXT_ERRORS) for symbol in symbols]
    symbol_offsets = array("I", [0])
    symbol_offsets.extend(itertools.accumulate(map(len, encoded)))
    sections = [
        _le_bytes(pair_offsets),
        _le_bytes(pair_symbols),
        _le_bytes(symbol_offsets),
        b"".join(encoded),
    ]
    return sections, len(pair_symbols) // 2, len(symbols)


def encode_payload(
    timestamps: Sequence[int],
    lines: Sequence[bytes | str],
    metadata: Sequence[Metadata] | None,
) -> bytes:
    """The uncompressed block payload of these entries, in the order given (no sorting).

    ``metadata`` may be ``None`` when no entry has any. Used for blocks (after sorting) and for
    head snapshots (arrival order).
    """
    count = len(timestamps)
    if len(lines) != count:
        raise ValueError(f"{len(lines)} lines for {count} timestamps")
    ts_array = _to_array("q", timestamps)
    sections: list[bytes] = []
    flags = pairs = symbols = 0
    try:  # a u32 offset array refuses values of 4 GiB and more
        lines_bytes, line_offsets = _encode_lines(lines)
        if metadata is not None and any(metadata):
            sections, pairs, symbols = _encode_metadata(metadata, count)
            flags = _FLAG_METADATA
    except OverflowError:
        raise ValueError("a block's lines or metadata exceed 4 GiB") from None
    if metadata is not None and len(metadata) != count:
        raise ValueError(f"{len(metadata)} metadata tuples for {count} entries")
    return b"".join(
        [
            _HEADER.pack(count, flags, pairs, symbols),
            _le_bytes(ts_array),
            _le_bytes(line_offsets),
            *sections,
            lines_bytes,
        ]
    )


def sort_order(timestamps: Sequence[int]) -> list[int] | None:
    """Indexes that sort entries by (timestamp, arrival), or ``None`` if already sorted.

    Both the check and the sort run in C (a list comparison and a stable ``sorted``), so ordered
    input, the common case, costs one pass.
    """
    as_list = list(timestamps)
    ordered = sorted(as_list)
    if ordered == as_list:
        return None
    return sorted(range(len(as_list)), key=as_list.__getitem__)


def encode_block(
    timestamps: Sequence[int],
    lines: Sequence[bytes | str],
    metadata: Sequence[Metadata] | None,
    encoding: codec.Encoding,
) -> EncodedBlock:
    """Sort the entries by (timestamp, arrival order), lay them out and compress them.

    ``lines`` are ``str`` (encoded to UTF-8) or UTF-8 ``bytes``. At least one entry is needed:
    an empty block has no time range to index.
    """
    if not timestamps:
        raise ValueError("a block needs at least one entry")
    order = sort_order(timestamps)
    if order is not None:
        timestamps = [timestamps[i] for i in order]
        lines = [lines[i] for i in order]
        if metadata is not None:
            metadata = [metadata[i] for i in order]
    return encode_sorted(timestamps, lines, metadata, encoding)


def encode_sorted(
    timestamps: Sequence[int],
    lines: Sequence[bytes | str],
    metadata: Sequence[Metadata] | None,
    encoding: codec.Encoding,
) -> EncodedBlock:
    """``encode_block`` for entries the caller has already sorted (the head block's cut)."""
    payload = encode_payload(timestamps, lines, metadata)
    data = codec.compress(encoding, payload)
    return EncodedBlock(
        data=data,
        crc=crc32c(data),
        num_entries=len(timestamps),
        mint=timestamps[0],
        maxt=timestamps[-1],
        uncompressed_size=len(payload),
    )


def _read_array(
    typecode: str, payload: memoryview, position: int, count: int
) -> tuple[array[int], int]:
    values = array(typecode)
    end = position + count * values.itemsize
    if end > len(payload):
        raise BlockCorruptError("block payload is shorter than its header says")
    values.frombytes(payload[position:end])
    if _BIG_ENDIAN:  # pragma: no cover
        values.byteswap()
    return values, end


def _decode_text(data: bytes) -> str:
    """Decode a stored line or symbol; invalid UTF-8 (only from ``bytes`` input) reads as U+FFFD."""
    try:
        return data.decode("utf-8", _TEXT_ERRORS)
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _check_offsets(offsets: array[int], total: int, what: str) -> None:
    """Offsets must start at 0 and end at ``total``; monotonicity is the CRC's job."""
    if offsets[0] != 0 or offsets[-1] != total:
        raise BlockCorruptError(f"block {what} offsets are inconsistent")


class DecodedBlock:
    """A decompressed block: packed arrays plus the lines buffer, decoded per entry on demand.

    ``timestamps`` is sorted ascending (ties in arrival order) for blocks; for a head snapshot it
    is in arrival order, and only the index-based accessors apply.
    """

    __slots__ = (
        "_pair_offsets",
        "_pair_symbols",
        "_symbols",
        "_text",
        "line_offsets",
        "lines_buffer",
        "timestamps",
    )

    timestamps: array[int]
    line_offsets: array[int]
    lines_buffer: bytes

    def __init__(self, payload: bytes) -> None:
        """Parse an uncompressed payload; ``BlockCorruptError`` if its sections do not add up."""
        view = memoryview(payload)
        if len(view) < _HEADER.size:
            raise BlockCorruptError("block payload is shorter than its header")
        count, flags, pairs, symbols = _HEADER.unpack_from(view, 0)
        if flags & ~_FLAG_METADATA:
            raise BlockCorruptError(f"unknown block flags {flags:#x}")
        position = _HEADER.size
        self.timestamps, position = _read_array("q", view, position, count)
        self.line_offsets, position = _read_array("I", view, position, count + 1)
        self._pair_offsets: array[int] | None = None
        self._pair_symbols: array[int] | None = None
        self._symbols: list[str] = []
        if flags & _FLAG_METADATA:
            self._pair_offsets, position = _read_array("I", view, position, count + 1)
            self._pair_symbols, position = _read_array("I", view, position, 2 * pairs)
            symbol_offsets, position = _read_array("I", view, position, symbols + 1)
            _check_offsets(self._pair_offsets, pairs, "metadata pair")
            end = position + symbol_offsets[-1]
            _check_offsets(symbol_offsets, end - position, "symbol")
            table = bytes(view[position:end])
            self._symbols = [
                _decode_text(table[start:stop])
                for start, stop in itertools.pairwise(symbol_offsets)
            ]
            if self._pair_symbols and max(self._pair_symbols) >= symbols:
                raise BlockCorruptError("block metadata refers to a missing symbol")
            position = end
        self.lines_buffer = bytes(view[position:])
        _check_offsets(self.line_offsets, len(self.lines_buffer), "line")
        self._text: str | None = None

    @classmethod
    def from_compressed(cls, data: bytes, encoding: codec.Encoding, crc: int) -> DecodedBlock:
        """Verify the CRC of stored block bytes, decompress and parse them."""
        if crc32c(data) != crc:
            raise BlockCorruptError("block checksum mismatch")
        try:
            payload = codec.decompress(encoding, data)
        except codec.DecompressError as error:
            raise BlockCorruptError(f"block does not decompress: {error}") from error
        return cls(payload)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def has_metadata(self) -> bool:
        return self._pair_offsets is not None

    def line_bytes(self, index: int) -> bytes:
        offsets = self.line_offsets
        return self.lines_buffer[offsets[index] : offsets[index + 1]]

    def line(self, index: int) -> str:
        return _decode_text(self.line_bytes(index))

    def metadata(self, index: int) -> Metadata:
        pair_offsets = self._pair_offsets
        if pair_offsets is None:
            return NO_METADATA
        start, stop = pair_offsets[index], pair_offsets[index + 1]
        if start == stop:
            return NO_METADATA
        symbols = self._symbols
        indexes = self._pair_symbols
        assert indexes is not None
        return tuple(
            (symbols[indexes[j]], symbols[indexes[j + 1]]) for j in range(2 * start, 2 * stop, 2)
        )

    def indexes_in_range(self, from_ns: int, through_ns: int) -> range:
        """Entries with ``from_ns <= ts < through_ns``, by bisection of the sorted timestamps."""
        if through_ns <= from_ns:
            return range(0)
        timestamps = self.timestamps
        return range(
            bisect.bisect_left(timestamps, from_ns), bisect.bisect_left(timestamps, through_ns)
        )

    def find_literal(self, needle: bytes) -> list[int]:
        """Indexes of entries whose line contains ``needle``, in ascending order.

        ``bytes.find`` scans the whole lines buffer in C; each hit is mapped to its entry by
        bisecting the line offsets, and the scan resumes at the next line, so Python work is per
        matching line only. A hit that runs across a line boundary is not a match; no later
        start in the same line can fit either, so the scan also resumes at the next line.
        """
        count = len(self.timestamps)
        if not needle:
            return list(range(count))
        buffer = self.lines_buffer
        offsets = self.line_offsets
        size = len(needle)
        find = buffer.find
        bisect_right = bisect.bisect_right
        hits: list[int] = []
        position = find(needle)
        entry = 0
        while position != -1:
            entry = bisect_right(offsets, position, entry) - 1
            next_start = offsets[entry + 1]
            if position + size <= next_start:
                hits.append(entry)
            position = find(needle, next_start)
        return hits

    def _lines_text(self) -> str | None:
        """The whole lines buffer as one ``str`` when it is ASCII, so that byte offsets are
        character offsets and lines are plain slices; ``None`` otherwise."""
        if self._text is None and self.lines_buffer.isascii():
            self._text = self.lines_buffer.decode("ascii")
        return self._text

    def iter_indexes(self, indexes: range, *, backward: bool = False) -> Iterator[Entry]:
        """The entries at ``indexes`` (in that order, or reversed), as ``(ts, line, metadata)``.

        For ASCII blocks without metadata the iterator is built from C-level pieces (``zip``,
        ``map``, slices), so iterating costs no Python bytecode per entry.
        """
        if backward:
            indexes = indexes[::-1]
        if not indexes:
            return iter(())
        offsets = self.line_offsets
        timestamps: Iterable[int]
        starts: Iterable[int]
        ends: Iterable[int]
        if indexes.step in (1, -1):
            low = min(indexes[0], indexes[-1])
            high = max(indexes[0], indexes[-1]) + 1
            ts_slice = self.timestamps[low:high]
            start_slice = offsets[low:high]
            end_slice = offsets[low + 1 : high + 1]
            if indexes.step == -1:
                ts_slice.reverse()
                start_slice.reverse()
                end_slice.reverse()
            timestamps, starts, ends = ts_slice, start_slice, end_slice
        else:
            timestamps = map(self.timestamps.__getitem__, indexes)
            starts = map(offsets.__getitem__, indexes)
            ends = map(
                offsets.__getitem__, range(indexes.start + 1, indexes.stop + 1, indexes.step)
            )
        text = self._lines_text()
        slices = map(slice, starts, ends)
        lines: Iterable[str]
        if text is not None:
            lines = map(text.__getitem__, slices)
        else:
            lines = map(_decode_text, map(self.lines_buffer.__getitem__, slices))
        metadata: Iterable[Metadata]
        if self._pair_offsets is None:
            metadata = itertools.repeat(NO_METADATA)
        else:
            metadata = map(self.metadata, indexes)
        return zip(timestamps, lines, metadata, strict=False)  # metadata may be endless

    def entries(
        self, from_ns: int, through_ns: int, direction: Direction = "forward"
    ) -> Iterator[Entry]:
        """Entries with ``from_ns <= ts < through_ns`` in time order (or reversed)."""
        return self.iter_indexes(
            self.indexes_in_range(from_ns, through_ns), backward=direction == "backward"
        )


def decode_block(data: bytes, encoding: codec.Encoding, crc: int) -> DecodedBlock:
    """Verify, decompress and parse one stored block (``BlockCorruptError`` on any mismatch)."""
    return DecodedBlock.from_compressed(data, encoding, crc)


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """A cut block of a chunk: compressed bytes plus index facts, decoded only when read.

    Nothing decoded is cached, so a chunk in memory costs only its compressed bytes; decoding a
    256 KiB block again is a decompression and a few copies.
    """

    encoded: EncodedBlock
    encoding: codec.Encoding

    @property
    def num_entries(self) -> int:
        return self.encoded.num_entries

    @property
    def mint(self) -> int:
        return self.encoded.mint

    @property
    def maxt(self) -> int:
        return self.encoded.maxt

    @property
    def compressed_size(self) -> int:
        return len(self.encoded.data)

    @property
    def uncompressed_size(self) -> int:
        return self.encoded.uncompressed_size

    def decode(self) -> DecodedBlock:
        """Verify the CRC, decompress and parse; raises ``BlockCorruptError``."""
        encoded = self.encoded
        return DecodedBlock.from_compressed(encoded.data, self.encoding, encoded.crc)

    def overlaps(self, from_ns: int, through_ns: int) -> bool:
        """Whether any entry can fall in ``[from_ns, through_ns)``."""
        return self.encoded.mint < through_ns and self.encoded.maxt >= from_ns

    def entries(
        self, from_ns: int, through_ns: int, direction: Direction = "forward"
    ) -> Iterator[Entry]:
        """Decode now and iterate the entries in ``[from_ns, through_ns)``. Returns the decoded
        block's C-level iterator rather than wrapping it in a generator, which would add Python
        work per entry; callers that want the decode deferred call this lazily."""
        return self.decode().entries(from_ns, through_ns, direction)
