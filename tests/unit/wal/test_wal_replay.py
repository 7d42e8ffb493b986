"""Replay: checkpoint first, later segments in order, duplicates dropped, damage survived."""

from __future__ import annotations

import datetime
import pathlib

from lokistack.wal import checkpoint, log, record, replay, segment


def _entries(fingerprint: int, first: int, count: int) -> record.EntriesRecord:
    """Entries numbered first..first+count-1 of one stream (the counter is the last number)."""
    numbers = range(first, first + count)
    return record.EntriesRecord.from_entries(
        "t", fingerprint, numbers, [f"entry {n}" for n in numbers], counter=first + count - 1
    )


def _segment(directory: pathlib.Path, number: int, *batches: list[record.Record]) -> None:
    writer = segment.SegmentWriter.create(directory, number)
    for batch in batches:
        writer.append(record.encode_batch(batch))
    writer.close()


def _stream(fingerprint: int, entry_count: int) -> record.CheckpointStreamRecord:
    return record.CheckpointStreamRecord("t", fingerprint, "{}", b"chunks", entry_count)


def test_checkpoint_records_come_first_then_later_segments(tmp_path: pathlib.Path) -> None:
    _segment(tmp_path, 0, [_entries(1, 1, 2)])
    _segment(tmp_path, 1, [_entries(1, 3, 2)])
    checkpoint.write_checkpoint(tmp_path, [_stream(1, 4)], 1)
    _segment(tmp_path, 2, [record.SeriesRecord("t", 2, "{}"), _entries(2, 1, 3)])
    _segment(tmp_path, 3, [_entries(2, 4, 1)])
    replayed = replay.replay(tmp_path)
    assert list(replayed) == [
        _stream(1, 4),
        record.SeriesRecord("t", 2, "{}"),
        _entries(2, 1, 3),
        _entries(2, 4, 1),
    ]
    stats = replayed.stats
    assert (stats.checkpoint, stats.segments, stats.records, stats.entries) == (1, 2, 4, 4)
    assert stats.bytes > 0 and stats.seconds > 0
    assert stats.corruptions == 0


def test_leftover_covered_segments_are_not_replayed(tmp_path: pathlib.Path) -> None:
    checkpoint.write_checkpoint(tmp_path, [_stream(1, 0)], 4)
    _segment(tmp_path, 3, [_entries(1, 1, 1)])  # as if its deletion had failed
    _segment(tmp_path, 5, [_entries(1, 2, 1)])
    assert list(replay.replay(tmp_path)) == [_stream(1, 0), _entries(1, 2, 1)]


def test_entries_already_in_the_checkpoint_are_dropped_or_trimmed(
    tmp_path: pathlib.Path,
) -> None:
    # Segment 1 was written while the checkpoint of segment 0 was taken: stream 7's snapshot
    # already holds entries 1..5, which segment 1 also logged.
    _segment(tmp_path, 1, [_entries(7, 1, 3)], [_entries(7, 4, 4)], [_entries(8, 1, 2)])
    checkpoint.write_checkpoint(tmp_path, [_stream(7, 5)], 0)
    _segment(tmp_path, 2, [_entries(7, 8, 2)])
    replayed = replay.replay(tmp_path)
    records = list(replayed)
    assert records == [
        _stream(7, 5),
        _entries(7, 4, 4).drop_first(2),
        _entries(8, 1, 2),
        _entries(7, 8, 2),
    ]
    assert isinstance(records[1], record.EntriesRecord)
    assert records[1].lines == ["entry 6", "entry 7"]
    assert replayed.stats.duplicate_entries == 5


def test_segments_after_the_live_one_are_never_deduplicated(tmp_path: pathlib.Path) -> None:
    _segment(tmp_path, 1, [_entries(7, 4, 2)])
    checkpoint.write_checkpoint(tmp_path, [_stream(7, 5)], 0)  # live segment: 1
    # The stream was later dropped and re-created: its counter started again from 1.
    _segment(tmp_path, 2, [_entries(7, 1, 2)])
    records = list(replay.replay(tmp_path))
    assert records == [_stream(7, 5), _entries(7, 1, 2)]


def test_the_final_segment_tail_is_repaired_during_replay(tmp_path: pathlib.Path) -> None:
    _segment(tmp_path, 0, [_entries(1, 1, 2)])
    _segment(tmp_path, 1, [_entries(1, 3, 2)], [_entries(1, 5, 2)])
    last = tmp_path / "00000001"
    size = last.stat().st_size
    with last.open("r+b") as handle:
        handle.truncate(size - 3)
    replayed = replay.replay(tmp_path)
    assert list(replayed) == [_entries(1, 1, 2), _entries(1, 3, 2)]
    assert replayed.stats.corruptions == 1
    assert segment.scan(last) is None  # truncated at the frame boundary
    assert list(replay.replay(tmp_path)) == [_entries(1, 1, 2), _entries(1, 3, 2)]


def test_a_damaged_middle_segment_is_skipped_from_the_damage_on(
    tmp_path: pathlib.Path,
) -> None:
    _segment(tmp_path, 0, [_entries(1, 1, 1)], [_entries(1, 2, 1)])
    _segment(tmp_path, 1, [_entries(1, 3, 1)])
    first = tmp_path / "00000000"
    data = bytearray(first.read_bytes())
    data[-4] ^= 1
    first.write_bytes(bytes(data))
    replayed = replay.replay(tmp_path)
    assert list(replayed) == [_entries(1, 1, 1), _entries(1, 3, 1)]
    assert replayed.stats.corruptions == 1
    assert first.stat().st_size == len(data)  # only the final segment is ever truncated


def test_an_empty_or_missing_directory_replays_nothing(tmp_path: pathlib.Path) -> None:
    assert list(replay.replay(tmp_path / "missing")) == []
    assert list(replay.replay(tmp_path)) == []


async def test_a_full_cycle_of_log_checkpoint_log_replay(tmp_path: pathlib.Path) -> None:
    wal = log.WAL(tmp_path, 1 << 20, "group", datetime.timedelta(milliseconds=50))
    await wal.open()
    await wal.log([record.SeriesRecord("t", 1, '{a="1"}'), _entries(1, 1, 3)])
    covered = wal.rotate()
    await wal.log([_entries(1, 4, 2)])  # lands in the checkpoint too: appended before snapshot
    checkpoint.write_checkpoint(tmp_path, [_stream(1, 5)], covered)
    await wal.log([_entries(1, 6, 1)])
    await wal.close()
    assert wal.segments() == [1]
    assert list(replay.replay(tmp_path)) == [_stream(1, 5), _entries(1, 6, 1)]
