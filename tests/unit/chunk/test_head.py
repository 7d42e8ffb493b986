"""Head block: duplicates, out-of-order entries, size accounting, queries, cuts, snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block, codec, head

entry_st = st.tuples(
    st.integers(0, 12),
    st.sampled_from(["", "a", "b", "é", "a b", "\ud800"]),
    st.sampled_from([(), (("k", "1"),), (("k", "2"),), (("k", "1"), ("j", "é"))]),
)

Entry = tuple[int, str, block.Metadata]


def _append_all(entries: list[Entry]) -> tuple[head.HeadBlock, list[Entry], list[bool]]:
    """Append to a head and to a reference model of Loki's duplicate rule."""
    current = head.HeadBlock()
    model: list[Entry] = []
    results = []
    for entry in entries:
        accepted = current.append(*entry)
        results.append(accepted)
        assert accepted == (entry not in model)
        if accepted:
            model.append(entry)
    return current, model, results


def _ordered(current: head.HeadBlock) -> bool:
    """Read the property through a call, so the type checker does not keep it narrowed."""
    return current.ordered


@settings(max_examples=150)
@given(entries=st.lists(entry_st, max_size=40))
def test_duplicates_dropped_and_entries_sorted_by_time_then_arrival(entries: list[Entry]) -> None:
    current, model, _ = _append_all(entries)
    expected = sorted(model, key=lambda e: e[0])
    assert len(current) == len(model)
    assert list(current.entries(0, 13)) == expected
    assert list(current.entries(0, 13, "backward")) == expected[::-1]
    assert current.uncompressed_size == sum(
        len(e[1].encode("utf-8", "surrogatepass")) + 8 * len(e[2]) for e in model
    )
    if model:
        assert current.mint == expected[0][0]
        assert current.maxt == expected[-1][0]
        encoded = current.cut(codec.Encoding.SNAPPY)
        decoded = block.decode_block(encoded.data, codec.Encoding.SNAPPY, encoded.crc)
        assert list(decoded.entries(0, 13)) == expected
    assert len(current) == 0
    assert current.uncompressed_size == 0


@settings(max_examples=80)
@given(
    entries=st.lists(entry_st, max_size=30),
    from_ns=st.integers(-1, 14),
    through_ns=st.integers(-1, 14),
    backward=st.booleans(),
)
def test_entries_by_range(
    entries: list[Entry], from_ns: int, through_ns: int, backward: bool
) -> None:
    current, model, _ = _append_all(entries)
    expected = [e for e in sorted(model, key=lambda e: e[0]) if from_ns <= e[0] < through_ns]
    direction: block.Direction = "backward" if backward else "forward"
    assert list(current.entries(from_ns, through_ns, direction)) == (
        expected[::-1] if backward else expected
    )


@settings(max_examples=60)
@given(entries=st.lists(entry_st, max_size=30), more=st.lists(entry_st, max_size=10))
def test_snapshot_restores_the_same_head(entries: list[Entry], more: list[Entry]) -> None:
    original, _, _ = _append_all(entries)
    restored = head.HeadBlock.from_bytes(original.to_bytes())
    assert list(restored.entries(0, 13)) == list(original.entries(0, 13))
    assert restored.uncompressed_size == original.uncompressed_size
    assert (restored.mint, restored.maxt, len(restored)) == (
        original.mint,
        original.maxt,
        len(original),
    )
    # Later appends behave as they would have without the restart.
    for entry in more:
        assert restored.append(*entry) == original.append(*entry)
    assert list(restored.entries(0, 13)) == list(original.entries(0, 13))


def test_in_order_fast_path_and_equal_timestamps() -> None:
    current = head.HeadBlock()
    assert current.append(1, "a")
    assert current.append(2, "a")  # same line, newer ts: kept
    assert current.append(2, "b")  # same ts, other line: kept
    assert not current.append(2, "a")  # exact duplicate of an entry at maxt
    assert current.append(2, "a", (("k", "v"),))  # same line, other metadata: kept
    assert not current.append(2, "b")
    assert _ordered(current)
    assert current.append(1, "c")  # out of order: accepted, sorted later
    assert not _ordered(current)
    assert not current.append(1, "a")
    assert not current.append(2, "b")
    assert current.append(0, "a")
    assert current.mint == 0 and current.maxt == 2
    assert list(current.entries(0, 3)) == [
        (0, "a", ()),
        (1, "a", ()),
        (1, "c", ()),
        (2, "a", ()),
        (2, "b", ()),
        (2, "a", (("k", "v"),)),
    ]


def test_size_counts_utf8_bytes_and_eight_per_pair() -> None:
    current = head.HeadBlock()
    current.append(1, "abc")
    current.append(2, "é")  # 2 bytes in UTF-8
    current.append(3, "", (("trace_id", "0123456789"), ("x", "y")))
    assert current.uncompressed_size == 3 + 2 + 16


def test_empty_head() -> None:
    current = head.HeadBlock()
    assert len(current) == 0
    assert (current.mint, current.maxt, current.uncompressed_size) == (0, 0, 0)
    assert list(current.entries(-100, 100)) == []
    with pytest.raises(ValueError, match="empty head"):
        current.cut(codec.Encoding.NONE)
    restored = head.HeadBlock.from_bytes(current.to_bytes())
    assert len(restored) == 0


def test_iterators_are_snapshots() -> None:
    current = head.HeadBlock()
    for ts in (3, 1, 2):
        current.append(ts, f"l{ts}")
    ordered = head.HeadBlock()
    ordered.append(1, "x")
    forward = current.entries(0, 10)
    in_order = ordered.entries(0, 10)
    current.append(0, "late")
    current.cut(codec.Encoding.NONE)
    ordered.append(2, "y")
    assert [e[1] for e in forward] == ["l1", "l2", "l3"]
    assert [e[1] for e in in_order] == ["x"]


def test_timestamp_outside_int64_leaves_head_unchanged() -> None:
    current = head.HeadBlock()
    current.append(5, "a")
    with pytest.raises(OverflowError):
        current.append(1 << 63, "b")
    with pytest.raises(OverflowError):
        current.append(-(1 << 63) - 1, "b")
    assert len(current) == 1 and current.maxt == 5
    assert current.append(6, "c")
    assert current.append(-(1 << 63), "min")
    assert current.append((1 << 63) - 1, "max")
    assert [e[0] for e in current.entries(-(1 << 63), 1 << 63)] == [
        -(1 << 63),
        5,
        6,
        (1 << 63) - 1,
    ]


def test_cut_resets_duplicate_detection() -> None:
    current = head.HeadBlock()
    current.append(1, "a")
    current.append(0, "b")  # builds the out-of-order index
    current.cut(codec.Encoding.NONE)
    assert current.ordered
    assert current.append(1, "a")  # the earlier copy is in a cut block now
    assert current.mint == 1


def test_encode_does_not_mutate() -> None:
    current = head.HeadBlock()
    current.append(2, "b")
    current.append(1, "a")
    encoded = current.encode(codec.Encoding.LZ4)
    assert len(current) == 2
    assert encoded == current.cut(codec.Encoding.LZ4)


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_corrupt_snapshot_is_rejected(position: int) -> None:
    current = head.HeadBlock()
    current.append(1, "hello", (("a", "b"),))
    data = bytearray(current.to_bytes())
    data[position] ^= 1
    with pytest.raises(block.ChunkCorruptError):
        head.HeadBlock.from_bytes(bytes(data))
    with pytest.raises(block.ChunkCorruptError, match="truncated"):
        head.HeadBlock.from_bytes(b"LKSH")
