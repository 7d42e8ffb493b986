"""MemChunk: cutting, Loki's size rules, time-ordered iteration, the byte format, checkpoints."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block, chunk, codec

ALL = list(codec.Encoding)
Entry = tuple[int, str, block.Metadata]
EVERYTHING = (-(1 << 63), 1 << 63)

entry_st = st.tuples(
    st.integers(0, 30),
    st.sampled_from(["", "abc", "hello world", "ünïcödé", "x" * 40, "\ud83d\ude00 emoji"]),
    st.sampled_from([(), (("pod", "a"),), (("pod", "b"), ("trace", "é"))]),
)


def _fill(
    entries: list[Entry], encoding: codec.Encoding = codec.Encoding.SNAPPY, block_size: int = 64
) -> tuple[chunk.MemChunk, list[Entry]]:
    """Append to a chunk and to a model: a duplicate is dropped only if the same entry is in
    the current head; the head is cut once its Loki size reaches block_size."""
    memchunk = chunk.MemChunk(encoding, block_size=block_size, target_size=10_000)
    accepted: list[Entry] = []
    in_head: list[Entry] = []
    head_size = 0
    for entry in entries:
        duplicate = entry in in_head
        assert memchunk.append(*entry) is not duplicate
        if duplicate:
            continue
        accepted.append(entry)
        in_head.append(entry)
        head_size += len(entry[1].encode("utf-8", "surrogatepass")) + 8 * len(entry[2])
        if head_size >= block_size:
            in_head, head_size = [], 0
    assert memchunk.head.uncompressed_size == head_size
    return memchunk, accepted


def _expected(accepted: list[Entry], from_ns: int, through_ns: int, backward: bool) -> list[Entry]:
    selected = [e for e in sorted(accepted, key=lambda e: e[0]) if from_ns <= e[0] < through_ns]
    return selected[::-1] if backward else selected


@pytest.mark.parametrize("encoding", ALL)
@settings(max_examples=20)
@given(entries=st.lists(entry_st, max_size=60))
def test_round_trip_through_bytes_checkpoint_and_close(
    encoding: codec.Encoding, entries: list[Entry]
) -> None:
    memchunk, accepted = _fill(entries, encoding)
    expected = _expected(accepted, *EVERYTHING, backward=False)
    assert memchunk.num_entries == len(accepted)
    assert list(memchunk.iterate(*EVERYTHING)) == expected

    decoded = chunk.MemChunk.decode(memchunk.encode())
    assert decoded.closed and decoded.encoding is encoding
    assert list(decoded.iterate(*EVERYTHING)) == expected

    restored = chunk.MemChunk.from_checkpoint(memchunk.to_checkpoint())
    assert [b.encoded for b in restored.blocks] == [b.encoded for b in memchunk.blocks]
    assert list(restored.head.entries(*EVERYTHING)) == list(memchunk.head.entries(*EVERYTHING))
    assert restored.encode() == memchunk.encode()

    memchunk.close()
    assert len(memchunk.head) == 0
    assert list(memchunk.iterate(*EVERYTHING)) == expected
    spans = [(b.mint, b.maxt) for b in memchunk.blocks]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    if accepted:
        assert (memchunk.mint, memchunk.maxt) == (expected[0][0], expected[-1][0])


@settings(max_examples=120)
@given(
    entries=st.lists(entry_st, max_size=60),
    from_ns=st.integers(-1, 32),
    through_ns=st.integers(-1, 32),
    backward=st.booleans(),
    close=st.booleans(),
)
def test_iterate_matches_a_sorted_reference(
    entries: list[Entry], from_ns: int, through_ns: int, backward: bool, close: bool
) -> None:
    memchunk, accepted = _fill(entries, codec.Encoding.NONE)
    if close:
        memchunk.close()
    direction: block.Direction = "backward" if backward else "forward"
    got = list(memchunk.iterate(from_ns, through_ns, direction))
    assert got == _expected(accepted, from_ns, through_ns, backward)


def test_head_is_cut_when_it_reaches_block_size() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.SNAPPY, block_size=100, target_size=0)
    for i in range(9):
        memchunk.append(i, "x" * 10)
    memchunk.append(9, "", (("a", "b"),))  # 90 + 8
    assert len(memchunk.head) == 10  # 98 bytes: not cut yet
    memchunk.append(10, "xx")  # 100: cut
    assert [b.num_entries for b in memchunk.blocks] == [11]
    assert len(memchunk.head) == 0
    memchunk.append(11, "y" * 500)  # one big line is a block of its own
    assert [b.num_entries for b in memchunk.blocks] == [11, 1]
    assert memchunk.num_entries == 12


def test_space_for_follows_lokis_rule() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.NONE, block_size=1000, target_size=2000)
    memchunk.append(1, "x" * 500)
    assert memchunk.space_for(1000, 499)  # 500 + 1499 < 2000
    assert not memchunk.space_for(1000, 500)  # 2000 is not < 2000
    memchunk.append(2, "x" * 500)  # cut: 1000 uncompressed bytes become one block
    compressed = memchunk.blocks[0].compressed_size
    assert memchunk.compressed_size == compressed
    assert memchunk.space_for(2000 - compressed - 1, 0)
    assert not memchunk.space_for(2000 - compressed, 0)
    assert memchunk.utilization == compressed / 2000


def test_space_for_without_target_allows_ten_blocks() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.NONE, block_size=10, target_size=0)
    for i in range(9):
        memchunk.append(i, "x" * 10)
    assert memchunk.space_for(10**9, 0)
    memchunk.append(9, "x" * 10)
    assert len(memchunk.blocks) == 10
    assert not memchunk.space_for(0, 0)
    assert memchunk.utilization == 0.0


def test_duplicates_dropped_only_within_the_head() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.NONE, block_size=10)
    assert memchunk.append(1, "abcde")
    assert not memchunk.append(1, "abcde")
    assert memchunk.append(2, "abcde")  # cut
    assert memchunk.append(1, "abcde")  # the copy is in a cut block
    assert memchunk.num_entries == 3


def test_closed_chunk_rejects_appends_and_caches_its_bytes() -> None:
    memchunk = chunk.MemChunk()
    memchunk.append(5, "a")
    open_bytes = memchunk.encode()
    assert len(memchunk.head) == 1  # encode does not cut
    memchunk.close()
    memchunk.close()
    assert memchunk.encode() is memchunk.encode()
    assert memchunk.encode() == open_bytes
    assert memchunk.checksum() == block.crc32c(open_bytes)
    with pytest.raises(chunk.ChunkClosedError):
        memchunk.append(6, "b")


def test_close_rewrites_overlapping_blocks_in_time_order() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.ZSTD, block_size=20)
    for ts in (10, 11, 12, 13, 1, 2, 3, 4, 20, 5):
        memchunk.append(ts, "0123456789")
    before = [(b.mint, b.maxt) for b in memchunk.blocks]
    assert before == [(10, 11), (12, 13), (1, 2), (3, 4), (5, 20)]
    memchunk.close()
    assert [(b.mint, b.maxt) for b in memchunk.blocks] == [
        (1, 2),
        (3, 4),
        (5, 10),
        (11, 12),
        (13, 20),
    ]
    assert memchunk.num_entries == 10
    assert memchunk.compressed_size == sum(b.compressed_size for b in memchunk.blocks)


def test_sizes_and_bounds() -> None:
    empty = chunk.MemChunk()
    assert (empty.mint, empty.maxt, empty.num_entries, empty.compressed_size) == (0, 0, 0, 0)
    assert list(empty.iterate(*EVERYTHING)) == []
    assert chunk.MemChunk.decode(empty.encode()).num_entries == 0
    memchunk = chunk.MemChunk(codec.Encoding.NONE, block_size=10)
    memchunk.append(7, "0123456789")
    memchunk.append(3, "abc")
    block_payload = memchunk.blocks[0].uncompressed_size
    assert memchunk.uncompressed_size == block_payload + 3
    assert memchunk.compressed_size == memchunk.blocks[0].compressed_size + 3
    assert (memchunk.mint, memchunk.maxt) == (3, 7)
    assert list(memchunk.iterate(5, 5)) == []
    with pytest.raises(ValueError, match="block_size"):
        chunk.MemChunk(block_size=0)


def test_chunk_layout_is_as_documented() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.LZ4, block_size=1)
    memchunk.append(100, "first")
    memchunk.append(200, "second", (("k", "v"),))
    data = memchunk.encode()
    assert data[:8] == b"LKSC\x01\x03\x00\x00"
    index_offset, index_length, magic = struct.unpack_from("<QI4s", data, len(data) - 16)
    assert magic == b"LKSC"
    assert index_offset + index_length + 4 + 16 == len(data)
    assert struct.unpack_from("<I", data, index_offset) == (2,)
    first = struct.unpack_from("<qqQIII", data, index_offset + 4)
    second = struct.unpack_from("<qqQIII", data, index_offset + 40)
    blocks = memchunk.blocks
    assert first == (100, 100, 8, 1, blocks[0].compressed_size, blocks[0].uncompressed_size)
    assert second[:4] == (200, 200, 8 + blocks[0].compressed_size + 4, 1)
    (crc,) = struct.unpack_from("<I", data, 8 + blocks[0].compressed_size)
    assert crc == blocks[0].encoded.crc == block.crc32c(blocks[0].encoded.data)
    (index_crc,) = struct.unpack_from("<I", data, index_offset + index_length)
    assert index_crc == block.crc32c(data[:8] + data[index_offset : index_offset + index_length])


def _two_block_chunk() -> bytes:
    memchunk = chunk.MemChunk(codec.Encoding.SNAPPY, block_size=200)
    for i in range(40):
        memchunk.append(i, f"line number {i} with some text")
    memchunk.close()
    assert len(memchunk.blocks) > 2
    return memchunk.encode()


def test_flipped_bit_in_a_block_fails_when_that_block_is_read() -> None:
    data = bytearray(_two_block_chunk())
    data[20] ^= 0x04  # inside the first block
    decoded = chunk.MemChunk.decode(bytes(data))  # index is fine: decoding succeeds
    later = decoded.blocks[1]
    assert list(decoded.iterate(later.mint, later.maxt + 1))  # other blocks still readable
    with pytest.raises(block.BlockCorruptError, match="checksum mismatch"):
        list(decoded.iterate(*EVERYTHING))


@pytest.mark.parametrize("from_end", [17, 25, 40, 60])
def test_flipped_bit_in_the_index_fails_decode(from_end: int) -> None:
    data = bytearray(_two_block_chunk())
    data[len(data) - from_end] ^= 0x01
    with pytest.raises(block.ChunkCorruptError):
        chunk.MemChunk.decode(bytes(data))


@pytest.mark.parametrize(
    ("position", "message"),
    [(0, "bad magic"), (4, "index checksum"), (5, "index checksum"), (6, "index checksum")],
)
def test_damaged_header_fails_decode(position: int, message: str) -> None:
    data = bytearray(_two_block_chunk())
    data[position] ^= 0x01
    with pytest.raises(block.ChunkCorruptError, match=message):
        chunk.MemChunk.decode(bytes(data))


@pytest.mark.parametrize("length", [0, 10, 31, 100, -1])
def test_truncated_chunk_fails_decode(length: int) -> None:
    data = _two_block_chunk()
    with pytest.raises(block.ChunkCorruptError):
        chunk.MemChunk.decode(data[:length])


def test_checkpoint_preserves_state_and_is_checked() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.GZIP, block_size=50, target_size=777)
    for ts in (5, 3, 9, 1, 7):  # 18 bytes each: a block of 5, 3, 9; then 1 and 7 in the head
        memchunk.append(ts, "0123456789", (("pod", str(ts)),))
    checkpoint = memchunk.to_checkpoint()
    restored = chunk.MemChunk.from_checkpoint(checkpoint)
    assert (restored.block_size, restored.target_size, restored.encoding) == (
        50,
        777,
        codec.Encoding.GZIP,
    )
    assert not restored.closed
    assert len(restored.blocks) == 1 and len(restored.head) == 2
    assert not restored.append(1, "0123456789", (("pod", "1"),))  # still a duplicate
    assert list(restored.iterate(*EVERYTHING)) == list(memchunk.iterate(*EVERYTHING))
    memchunk.close()
    assert chunk.MemChunk.from_checkpoint(memchunk.to_checkpoint()).closed
    damaged = bytearray(checkpoint)
    damaged[len(damaged) // 2] ^= 0x01
    with pytest.raises(block.ChunkCorruptError, match="checksum"):
        chunk.MemChunk.from_checkpoint(bytes(damaged))
    with pytest.raises(block.ChunkCorruptError, match="truncated"):
        chunk.MemChunk.from_checkpoint(checkpoint[:10])


def test_iterate_sees_the_head_as_it_was_when_called() -> None:
    memchunk = chunk.MemChunk(codec.Encoding.SNAPPY, block_size=30)
    memchunk.append(1, "0123456789")
    memchunk.append(3, "0123456789")
    forward = memchunk.iterate(*EVERYTHING)
    backward = memchunk.iterate(*EVERYTHING, "backward")
    memchunk.append(2, "0123456789")  # cuts the head into a block
    memchunk.append(4, "later")
    assert [e[0] for e in forward] == [1, 3]
    assert [e[0] for e in backward] == [3, 1]
    assert [e[0] for e in memchunk.iterate(*EVERYTHING)] == [1, 2, 3, 4]
