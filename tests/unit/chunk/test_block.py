"""Blocks: encode/decode round trips, ordering, bulk search and corruption detection."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block, codec

ALL = list(codec.Encoding)

lines_st = st.one_of(
    st.text(alphabet="ab c=\n", max_size=12),
    st.text(max_size=8),  # any code point, lone surrogates included
)
metadata_st = st.one_of(
    st.just(()),
    st.lists(
        st.tuples(st.sampled_from(["trace_id", "pod", "é"]), st.text("xyz", max_size=3)),
        max_size=3,
    ).map(tuple),
)
entries_st = st.lists(
    st.tuples(st.integers(-5, 20), lines_st, metadata_st), min_size=1, max_size=40
)


def _sorted_reference(
    entries: list[tuple[int, str, block.Metadata]],
) -> list[tuple[int, str, block.Metadata]]:
    return sorted(entries, key=lambda entry: entry[0])  # stable: ties keep arrival order


def _encode(
    entries: list[tuple[int, str, block.Metadata]], encoding: codec.Encoding
) -> block.EncodedBlock:
    return block.encode_block(
        [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries], encoding
    )


@pytest.mark.parametrize("encoding", ALL)
@settings(max_examples=25)
@given(entries=entries_st)
def test_round_trip_sorts_by_time_then_arrival(
    encoding: codec.Encoding, entries: list[tuple[int, str, block.Metadata]]
) -> None:
    encoded = _encode(entries, encoding)
    expected = _sorted_reference(entries)
    assert encoded.num_entries == len(entries)
    assert (encoded.mint, encoded.maxt) == (expected[0][0], expected[-1][0])
    assert encoded.compressed_size == len(encoded.data)
    decoded = block.decode_block(encoded.data, encoding, encoded.crc)
    assert len(decoded) == len(entries)
    assert list(decoded.timestamps) == [e[0] for e in expected]
    assert [decoded.line(i) for i in range(len(decoded))] == [e[1] for e in expected]
    assert [decoded.metadata(i) for i in range(len(decoded))] == [e[2] for e in expected]
    assert list(decoded.entries(-(1 << 63), 1 << 63)) == expected
    assert list(decoded.entries(-(1 << 63), 1 << 63, "backward")) == expected[::-1]


@settings(max_examples=60)
@given(
    entries=entries_st,
    from_ns=st.integers(-7, 22),
    through_ns=st.integers(-7, 22),
    backward=st.booleans(),
)
def test_range_queries_match_a_filter(
    entries: list[tuple[int, str, block.Metadata]], from_ns: int, through_ns: int, backward: bool
) -> None:
    decoded = block.Block(_encode(entries, codec.Encoding.NONE), codec.Encoding.NONE).decode()
    expected = [e for e in _sorted_reference(entries) if from_ns <= e[0] < through_ns]
    rng = decoded.indexes_in_range(from_ns, through_ns)
    assert [decoded.timestamps[i] for i in rng] == [e[0] for e in expected]
    direction: block.Direction = "backward" if backward else "forward"
    got = list(decoded.entries(from_ns, through_ns, direction))
    assert got == (expected[::-1] if backward else expected)


@settings(max_examples=100)
@given(
    lines=st.lists(st.text(alphabet="abé\n", max_size=6), min_size=1, max_size=30),
    needle=st.text(alphabet="abé\n", max_size=3),
)
def test_find_literal_equals_naive_search(lines: list[str], needle: str) -> None:
    encoded = block.encode_block(list(range(len(lines))), lines, None, codec.Encoding.SNAPPY)
    decoded = block.decode_block(encoded.data, codec.Encoding.SNAPPY, encoded.crc)
    raw = needle.encode()
    assert decoded.find_literal(raw) == [i for i, line in enumerate(lines) if raw in line.encode()]


def test_find_literal_ignores_matches_across_line_boundaries() -> None:
    lines = ["xxab", "cdxx", "abcd", "", "zabc", "d"]
    encoded = block.encode_block(range(6), lines, None, codec.Encoding.NONE)
    decoded = block.decode_block(encoded.data, codec.Encoding.NONE, encoded.crc)
    assert decoded.find_literal(b"abcd") == [2]
    assert decoded.find_literal(b"") == list(range(6))
    assert decoded.find_literal(b"nothing") == []


@settings(max_examples=40)
@given(
    count=st.integers(1, 12),
    start=st.integers(-3, 15),
    stop=st.integers(-3, 15),
    step=st.sampled_from([1, -1, 2, -3]),
    backward=st.booleans(),
)
def test_iter_indexes_accepts_any_range(
    count: int, start: int, stop: int, step: int, backward: bool
) -> None:
    lines = [f"line-{i}" if i % 3 else f"línea-{i}" for i in range(count)]
    metadata = [(("k", str(i)),) if i % 2 else () for i in range(count)]
    decoded = block.decode_block(
        *_data_crc(block.encode_block(range(count), lines, metadata, codec.Encoding.LZ4)),
    )
    indexes = range(count)[start:stop:step]
    expected = [(i, lines[i], metadata[i]) for i in indexes]
    if backward:
        expected.reverse()
    assert list(decoded.iter_indexes(indexes, backward=backward)) == expected


def _data_crc(encoded: block.EncodedBlock) -> tuple[bytes, codec.Encoding, int]:
    return encoded.data, codec.Encoding.LZ4, encoded.crc


def test_payload_layout_is_as_documented() -> None:
    encoded = block.encode_block(
        [30, 10], ["bb", "a"], [(), (("k", "v"), ("k", "w"))], codec.Encoding.NONE
    )
    payload = encoded.data
    assert encoded.uncompressed_size == len(payload)
    count, flags, pairs, symbols = struct.unpack_from("<IIII", payload, 0)
    assert (count, flags, pairs, symbols) == (2, 1, 2, 3)
    fields = struct.unpack_from("<qq III III IIII IIII", payload, 16)
    timestamps, line_offsets = fields[0:2], fields[2:5]
    pair_offsets, pair_symbols, symbol_offsets = fields[5:8], fields[8:12], fields[12:16]
    assert timestamps == (10, 30)
    assert line_offsets == (0, 1, 3)
    assert pair_offsets == (0, 2, 2)
    assert pair_symbols == (0, 1, 0, 2)
    assert symbol_offsets == (0, 1, 2, 3)
    assert payload[16 + 16 + 12 + 12 + 16 + 16 :] == b"kvw" + b"abb"


def test_entries_without_metadata_store_no_metadata_sections() -> None:
    lines = ["x" * 10] * 100
    plain = block.encode_block(range(100), lines, None, codec.Encoding.NONE)
    empty = block.encode_block(range(100), lines, [()] * 100, codec.Encoding.NONE)
    assert plain.data == empty.data
    assert len(plain.data) == 16 + 8 * 100 + 4 * 101 + 1000
    decoded = block.decode_block(plain.data, codec.Encoding.NONE, plain.crc)
    assert not decoded.has_metadata
    assert decoded.metadata(5) == ()


def test_bytes_lines_and_invalid_utf8() -> None:
    encoded = block.encode_block([1, 2], [b"ok", b"bad \xff"], None, codec.Encoding.SNAPPY)
    decoded = block.decode_block(encoded.data, codec.Encoding.SNAPPY, encoded.crc)
    assert decoded.line(0) == "ok"
    assert decoded.line(1) == "bad \ufffd"
    assert decoded.line_bytes(1) == b"bad \xff"
    assert decoded.lines_buffer == b"okbad \xff"
    assert [e[1] for e in decoded.entries(0, 10)] == ["ok", "bad \ufffd"]


def test_line_offsets_are_cumulative() -> None:
    encoded = block.encode_block([1, 2, 3], ["ab", "", "é"], None, codec.Encoding.NONE)
    decoded = block.decode_block(encoded.data, codec.Encoding.NONE, encoded.crc)
    assert list(decoded.line_offsets) == [0, 2, 2, 4]
    assert decoded.timestamps.typecode == "q"


@pytest.mark.parametrize("encoding", ALL)
def test_any_flipped_bit_is_detected(encoding: codec.Encoding) -> None:
    encoded = block.encode_block(range(50), [f"line {i}" for i in range(50)], None, encoding)
    for position in range(0, len(encoded.data), max(1, len(encoded.data) // 20)):
        damaged = bytearray(encoded.data)
        damaged[position] ^= 0x10
        with pytest.raises(block.BlockCorruptError, match="checksum mismatch"):
            block.decode_block(bytes(damaged), encoding, encoded.crc)


def test_wrong_codec_with_valid_crc_is_corruption() -> None:
    encoded = block.encode_block([1], ["x" * 100], None, codec.Encoding.SNAPPY)
    with pytest.raises(block.BlockCorruptError, match="does not decompress"):
        block.decode_block(encoded.data, codec.Encoding.ZSTD, encoded.crc)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        struct.pack("<IIII", 5, 0, 0, 0),  # says 5 entries, has none
        struct.pack("<IIII", 1, 4, 0, 0) + b"\0" * 16,  # unknown flag
        struct.pack("<IIII", 1, 0, 0, 0) + struct.pack("<qII", 1, 0, 9) + b"abc",  # bad offsets
        struct.pack("<IIII", 1, 1, 1, 1)
        + struct.pack("<qII", 1, 0, 1)
        + struct.pack("<II", 0, 1)
        + struct.pack("<II", 0, 7)  # symbol 7 of 1
        + struct.pack("<II", 0, 1)
        + b"kx",
    ],
)
def test_inconsistent_payload_is_corruption(payload: bytes) -> None:
    with pytest.raises(block.BlockCorruptError):
        block.DecodedBlock(payload)


def test_block_wrapper() -> None:
    encoded = block.encode_block([5, 9], ["a", "b"], None, codec.Encoding.ZSTD)
    wrapped = block.Block(encoded, codec.Encoding.ZSTD)
    assert (wrapped.mint, wrapped.maxt, wrapped.num_entries) == (5, 9, 2)
    assert wrapped.compressed_size == len(encoded.data)
    assert wrapped.uncompressed_size == encoded.uncompressed_size
    assert wrapped.overlaps(9, 10) and wrapped.overlaps(0, 6)
    assert not wrapped.overlaps(10, 20) and not wrapped.overlaps(0, 5)
    assert list(wrapped.entries(6, 100)) == [(9, "b", ())]


def test_empty_and_mismatched_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        block.encode_block([], [], None, codec.Encoding.NONE)
    with pytest.raises(ValueError, match="2 lines for 1 timestamps"):
        block.encode_block([1], ["a", "b"], None, codec.Encoding.NONE)
    with pytest.raises(ValueError, match="0 metadata tuples for 1 entries"):
        block.encode_block([1], ["a"], [], codec.Encoding.NONE)
