"""Record encoding: exact round trips, the protobuf fast path and rejection of malformed bodies."""

from __future__ import annotations

import array

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.proto import push_pb2
from lokistack.wal import record

fingerprints = st.integers(min_value=0, max_value=2**64 - 1)
counters = st.integers(min_value=0, max_value=2**64 - 1)
timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)
pairs = st.tuples(st.text(max_size=8), st.text(max_size=12))
metadata_per_entry = st.lists(pairs, max_size=3).map(tuple)


@st.composite
def entries_records(draw: st.DrawFn) -> record.EntriesRecord:
    count = draw(st.integers(min_value=0, max_value=20))
    stamps = draw(st.lists(timestamps, min_size=count, max_size=count))
    lines = draw(st.lists(st.text(max_size=40), min_size=count, max_size=count))
    metadata = draw(
        st.none() | st.lists(metadata_per_entry, min_size=count, max_size=count).map(list)
    )
    return record.EntriesRecord.from_entries(
        draw(st.text(max_size=20)),
        draw(fingerprints),
        stamps,
        lines,
        metadata=metadata,
        counter=draw(counters),
    )


series_records = st.builds(record.SeriesRecord, st.text(max_size=20), fingerprints, st.text())
checkpoint_records = st.builds(
    record.CheckpointStreamRecord,
    st.text(max_size=20),
    fingerprints,
    st.text(),
    st.binary(max_size=200),
    counters,
)
end_records = st.builds(record.CheckpointEndRecord, counters, counters)
any_record = series_records | entries_records() | checkpoint_records | end_records


@given(st.lists(any_record, min_size=1, max_size=8))
def test_every_record_type_round_trips_in_a_batch(records: list[record.Record]) -> None:
    decoded = record.decode_batch(record.encode_batch(records))
    assert decoded == records


@given(entries_records())
def test_decoded_entries_expose_packed_arrays_lines_and_metadata(
    original: record.EntriesRecord,
) -> None:
    (decoded,) = record.decode_batch(record.encode_batch([original]))
    assert isinstance(decoded, record.EntriesRecord)
    assert decoded.timestamps.typecode == "q"
    assert decoded.timestamps == original.timestamps
    assert decoded.lines == original.lines
    assert decoded.metadata == original.metadata
    assert len(decoded.metadata) == len(decoded)
    assert sum(decoded.line_lengths) == len(decoded.lines_blob)


def _stream(lines: list[str], with_metadata: bool = False) -> push_pb2.StreamAdapter:
    stream = push_pb2.StreamAdapter(labels='{app="x"}')
    for index, line in enumerate(lines):
        entry = stream.entries.add(line=line)
        entry.timestamp.seconds = 1_700_000_000 + index
        entry.timestamp.nanos = index * 7
        if with_metadata and index % 2:
            entry.structuredMetadata.add(name="trace_id", value=f"t{index}")
    return stream


@pytest.mark.parametrize("lines", [["a", "bb", ""], ["héllo", "wörld ✓", "plain"], []])
def test_from_stream_matches_the_entries_of_the_push(lines: list[str]) -> None:
    built = record.EntriesRecord.from_stream("t", 42, _stream(lines), counter=len(lines))
    expected = [1_700_000_000_000_000_000 + i * 1_000_000_000 + i * 7 for i in range(len(lines))]
    assert list(built.timestamps) == expected
    assert built.lines == lines
    assert built.lines_blob == "".join(lines).encode()
    assert list(built.line_lengths) == [len(line.encode()) for line in lines]
    assert built.raw_metadata is None
    (decoded,) = record.decode_batch(record.encode_batch([built]))
    assert decoded == built


def test_from_stream_keeps_structured_metadata_per_entry() -> None:
    built = record.EntriesRecord.from_stream("t", 1, _stream(["a", "b", "c", "d"], True))
    assert built.metadata == [(), (("trace_id", "t1"),), (), (("trace_id", "t3"),)]
    (decoded,) = record.decode_batch(record.encode_batch([built]))
    assert isinstance(decoded, record.EntriesRecord)
    assert decoded.metadata == built.metadata


def test_lines_are_decoded_lazily_and_cached() -> None:
    built = record.EntriesRecord.from_entries("t", 1, [1, 2], ["x", "é"])
    (decoded,) = record.decode_batch(record.encode_batch([built]))
    assert isinstance(decoded, record.EntriesRecord)
    assert decoded._lines is None
    assert decoded.lines == ["x", "é"]
    assert decoded.lines is decoded.lines


def test_surrogate_escaped_label_values_round_trip_to_the_same_string() -> None:
    labels = '{app="\udcff"}'  # how labels.md keeps an invalid byte
    (decoded,) = record.decode_batch(record.encode_batch([record.SeriesRecord("t", 1, labels)]))
    assert decoded == record.SeriesRecord("t", 1, labels)


@given(entries_records(), st.integers(min_value=0, max_value=20))
def test_drop_first_removes_exactly_the_leading_entries(
    original: record.EntriesRecord, count: int
) -> None:
    count = min(count, len(original))
    trimmed = original.drop_first(count)
    assert list(trimmed.timestamps) == list(original.timestamps)[count:]
    assert trimmed.lines == original.lines[count:]
    assert trimmed.metadata == original.metadata[count:]
    assert trimmed.counter == original.counter
    assert record.decode_batch(record.encode_batch([trimmed])) == [trimmed]


def test_constructor_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="differ"):
        record.EntriesRecord("t", 1, array.array("q", [1]), array.array("I"), b"")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x01\x05\x00",  # truncated record header
        b"\x09\x00\x00\x00\x00",  # unknown record type
        b"\x04\x20\x00\x00\x00" + b"\x00" * 8,  # body runs past the batch
        b"\x04\x11\x00\x00\x00" + b"\x00" * 17,  # trailing bytes in an end record
    ],
)
def test_malformed_payloads_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(record.DecodeError):
        record.decode_batch(payload)


def test_inconsistent_line_lengths_are_rejected() -> None:
    good = record.EntriesRecord.from_entries("t", 1, [1, 2], ["ab", "cd"])
    payload = bytearray(record.encode_batch([good]))
    lengths_at = payload.index(b"\x02\x00\x00\x00\x02\x00\x00\x00")
    payload[lengths_at] = 3  # the lengths now sum to 5, lines_size says 4
    with pytest.raises(record.DecodeError, match="line lengths"):
        record.decode_batch(bytes(payload))
