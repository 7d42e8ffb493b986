"""Segment files: framing, the reader's stopping rules and torn-tail repair at every byte."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil

import pytest
from lokistack.wal import record, segment


def _batch(index: int, streams: int = 3) -> list[record.Record]:
    batch: list[record.Record] = [record.SeriesRecord("tenant", index, f'{{i="{index}"}}')]
    for stream in range(streams):
        lines = [f"batch {index} stream {stream} line {n}" for n in range(4)]
        batch.append(record.EntriesRecord.from_entries("tenant", stream, range(4), lines))
    return batch


def _write(directory: pathlib.Path, batches: list[list[record.Record]]) -> list[int]:
    """Write one segment; return the offset where each frame starts, plus the end offset."""
    writer = segment.SegmentWriter.create(directory, 0)
    offsets = [writer.size]
    for batch in batches:
        writer.append(record.encode_batch(batch))
        offsets.append(writer.size)
    writer.close()
    return offsets


def _read(path: pathlib.Path) -> tuple[list[list[record.Record]], segment.SegmentReader]:
    reader = segment.SegmentReader(path)
    return [frame.records for frame in reader], reader


def test_frames_read_back_in_order(tmp_path: pathlib.Path) -> None:
    batches = [_batch(i) for i in range(5)]
    offsets = _write(tmp_path, batches)
    frames, reader = _read(tmp_path / "00000000")
    assert frames == batches
    assert reader.corruption is None
    assert reader.valid_size == offsets[-1] == (tmp_path / "00000000").stat().st_size


def test_segment_names_and_listing_ignore_foreign_files(tmp_path: pathlib.Path) -> None:
    for name in ["00000002", "00000000", "123456789", "tokens.json", "0001", "checkpoint.000001"]:
        (tmp_path / name).write_bytes(b"")
    assert segment.list_segments(tmp_path) == [0, 2, 123456789]
    assert segment.segment_name(7) == "00000007"
    assert segment.list_segments(tmp_path / "missing") == []


def test_an_empty_file_is_an_empty_valid_segment(tmp_path: pathlib.Path) -> None:
    (tmp_path / "00000000").write_bytes(b"")
    assert segment.scan(tmp_path / "00000000") is None


def test_truncation_at_every_offset_of_the_last_batch_keeps_all_earlier_batches(
    tmp_path: pathlib.Path,
) -> None:
    batches = [_batch(i) for i in range(3)]
    offsets = _write(tmp_path, batches)
    original = (tmp_path / "00000000").read_bytes()
    damaged = tmp_path / "cut" / "00000000"
    damaged.parent.mkdir()
    for cut in range(offsets[-2] + 1, offsets[-1]):
        damaged.write_bytes(original[:cut])
        damage = segment.repair(damaged)
        assert damage is not None
        assert damage.kind == "torn"
        assert (damage.offset, damage.lost_bytes) == (offsets[-2], cut - offsets[-2])
        assert damaged.read_bytes() == original[: offsets[-2]]
        frames, reader = _read(damaged)
        assert frames == batches[:-1]
        assert reader.corruption is None


def test_a_flipped_bit_anywhere_in_the_last_frame_is_detected(tmp_path: pathlib.Path) -> None:
    batches = [_batch(i) for i in range(3)]
    offsets = _write(tmp_path, batches)
    original = (tmp_path / "00000000").read_bytes()
    damaged = tmp_path / "flip" / "00000000"
    damaged.parent.mkdir()
    for position in range(offsets[-2], offsets[-1]):
        for bit in (0, 3, 7):
            flipped = bytearray(original)
            flipped[position] ^= 1 << bit
            damaged.write_bytes(bytes(flipped))
            frames, reader = _read(damaged)
            assert frames == batches[:-1], (position, bit)
            assert reader.corruption in {"checksum", "invalid", "torn"}
            assert reader.valid_size == offsets[-2]


def test_corruption_in_the_middle_stops_reading_there(tmp_path: pathlib.Path) -> None:
    batches = [_batch(i) for i in range(4)]
    offsets = _write(tmp_path, batches)
    path = tmp_path / "00000000"
    data = bytearray(path.read_bytes())
    data[offsets[1] + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    frames, reader = _read(path)
    assert frames == batches[:1]
    assert reader.corruption == "checksum"


def test_a_zero_filled_tail_is_cut_off(tmp_path: pathlib.Path) -> None:
    offsets = _write(tmp_path, [_batch(0)])
    path = tmp_path / "00000000"
    with path.open("ab") as handle:
        handle.write(b"\x00" * 4096)
    damage = segment.repair(path)
    assert damage is not None and damage.kind == "invalid"
    assert path.stat().st_size == offsets[-1]


def test_a_bad_header_makes_the_whole_segment_invalid(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, [_batch(0)])
    path = tmp_path / "00000000"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    damage = segment.repair(path)
    assert damage is not None and damage.kind == "header"
    assert path.stat().st_size == 0


def test_create_refuses_an_existing_segment(tmp_path: pathlib.Path) -> None:
    segment.SegmentWriter.create(tmp_path, 3).close()
    with pytest.raises(FileExistsError):
        segment.SegmentWriter.create(tmp_path, 3)


def test_a_failed_write_is_rolled_back_to_the_frame_boundary(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = segment.SegmentWriter.create(tmp_path, 0)
    writer.append(record.encode_batch(_batch(0)))
    good_size = writer.size
    real_pwrite = os.pwrite

    def partial(descriptor: int, buffers: list[bytes], offset: int) -> int:
        return real_pwrite(descriptor, buffers[0] + buffers[1][:10], offset)

    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", partial)
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        writer.append(record.encode_batch(_batch(1)))
    monkeypatch.undo()
    assert writer.size == good_size == (tmp_path / "00000000").stat().st_size
    assert not writer.broken
    writer.append(record.encode_batch(_batch(2)))
    writer.close()
    frames, reader = _read(tmp_path / "00000000")
    assert frames == [_batch(0), _batch(2)]
    assert reader.corruption is None


def test_a_failed_rollback_marks_the_writer_broken(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = segment.SegmentWriter.create(tmp_path, 0)

    def fail(*_args: object) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "pwritev", fail)
    monkeypatch.setattr(os, "ftruncate", fail)
    with pytest.raises(OSError):
        writer.append(b"payload")
    assert writer.broken
    writer.close()


def test_repair_of_a_copy_leaves_other_segments_alone(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, [_batch(0)])
    shutil.copy(tmp_path / "00000000", tmp_path / "00000001")
    with (tmp_path / "00000001").open("ab") as handle:
        handle.write(b"\x01garbage")
    assert segment.repair(tmp_path / "00000001") is not None
    assert (tmp_path / "00000000").read_bytes() == (tmp_path / "00000001").read_bytes()
